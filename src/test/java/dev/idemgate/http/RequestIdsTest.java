package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.payment.CardNumberScanner;
import java.util.stream.IntStream;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class RequestIdsTest {
  @Test
  @DisplayName("the gateway's own request ids never read as a card, though one in 2,100 holds a Luhn-valid run of "
      + "13-16 digits: one forwarded back (X-Request-Id) or named in a body is not redacted or refused")
  void ownRequestIdsAreNoCards() {
    // 1651834975743560 passes the Luhn check.
    assertThat(CardNumberScanner.containsCardNumber("req_1651834975743560")).isFalse();
    assertThat(IntStream.range(0, 1_000_000).mapToObj(i -> RequestIds.newId())
        .filter(CardNumberScanner::containsCardNumber).limit(5).toList()).isEmpty();
    assertThat(CardNumberScanner.containsCardNumber("req_4111111111111111a")).as("17 hex digits: no request id").isTrue();
  }
}
