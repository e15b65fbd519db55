package dev.idemgate.observability;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.payment.CardNumberScanner;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class LoggableRequestTest {
  @Test
  @DisplayName("a path is kept cut to 256 characters")
  void longPathsAreCut() {
    String path = "/" + "a".repeat(400);
    assertThat(LoggableRequest.path(path)).hasSize(LoggableRequest.MAX_PATH).isEqualTo(path.substring(0, 256));
    assertThat(LoggableRequest.path("/pay")).isEqualTo("/pay");
    assertThat(LoggableRequest.path(null)).isNull();
  }

  @Test
  @DisplayName("a path holding a card number is kept as redacted:card_number, even past the cut")
  void cardNumbersInPaths() {
    assertThat(LoggableRequest.path("/v1/cards/4242424242424242")).isEqualTo(CardNumberScanner.REDACTED);
    assertThat(LoggableRequest.path("/" + "a".repeat(300) + "/4242424242424242")).isEqualTo(CardNumberScanner.REDACTED);
    assertThat(LoggableRequest.path("/v1/payments/pay_0123456789")).isEqualTo("/v1/payments/pay_0123456789");
  }

  @Test
  @DisplayName("a method is kept cut to 32 characters, or as redacted:card_number when it holds one")
  void methods() {
    assertThat(LoggableRequest.method("POST")).isEqualTo("POST");
    assertThat(LoggableRequest.method("X".repeat(3_000))).isEqualTo("X".repeat(LoggableRequest.MAX_METHOD));
    assertThat(LoggableRequest.method("4242424242424242")).isEqualTo(CardNumberScanner.REDACTED);
    assertThat(LoggableRequest.method("X".repeat(40) + "4242424242424242")).isEqualTo(CardNumberScanner.REDACTED);
  }
}
