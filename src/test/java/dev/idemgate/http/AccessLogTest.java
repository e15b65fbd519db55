package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class AccessLogTest {
  @Test
  @DisplayName("a logged path is cut to 256 characters")
  void longPathsAreCut() {
    String path = "/" + "a".repeat(400);
    assertThat(AccessLog.loggable(path)).hasSize(AccessLog.MAX_LOGGED_PATH).isEqualTo(path.substring(0, 256));
    assertThat(AccessLog.loggable("/pay")).isEqualTo("/pay");
  }

  @Test
  @DisplayName("a path holding a card number is logged as redacted:card_number, even past the cut")
  void cardNumbersAreNotLogged() {
    assertThat(AccessLog.loggable("/v1/cards/4242424242424242")).isEqualTo(dev.idemgate.payment.CardNumberScanner.REDACTED);
    assertThat(AccessLog.loggable("/" + "a".repeat(300) + "/4242424242424242")).isEqualTo(dev.idemgate.payment.CardNumberScanner.REDACTED);
    assertThat(AccessLog.loggable("/v1/payments/pay_0123456789")).isEqualTo("/v1/payments/pay_0123456789");
  }

  @Test
  @DisplayName("a fragment is not part of a logged path")
  void fragmentsAreCut() {
    assertThat(AccessLog.withoutFragment("/admin/pending#frag")).isEqualTo("/admin/pending");
    assertThat(AccessLog.withoutFragment(null)).isNull();
  }
}
