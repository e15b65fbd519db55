package dev.idemgate.observability;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.auth.MerchantKeys;
import dev.idemgate.config.ConfigLoader;
import dev.idemgate.payment.CardNumberScanner;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class LoggableRequestTest {
  private static final String KEY = "sk_test_logged_key";
  private static final String ADMIN_TOKEN = "admin-token-never-logged";
  private static final CredentialScanner CREDENTIALS = new CredentialScanner(
      MerchantKeys.load(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_API_KEYS", "shop=" + KEY))), Optional.of(ADMIN_TOKEN));

  private static String path(String path) {
    return LoggableRequest.path(path, CREDENTIALS, null);
  }

  private static String method(String method) {
    return LoggableRequest.method(method, CREDENTIALS, null);
  }

  @Test
  @DisplayName("a path is kept cut to 256 characters")
  void longPathsAreCut() {
    String path = "/" + "a".repeat(400);
    assertThat(path(path)).hasSize(LoggableRequest.MAX_PATH).isEqualTo(path.substring(0, 256));
    assertThat(path("/pay")).isEqualTo("/pay");
    assertThat(path(null)).isNull();
  }

  @Test
  @DisplayName("a path holding a card number is kept as redacted:card_number, even past the cut")
  void cardNumbersInPaths() {
    assertThat(path("/v1/cards/4242424242424242")).isEqualTo(CardNumberScanner.REDACTED);
    assertThat(path("/" + "a".repeat(300) + "/4242424242424242")).isEqualTo(CardNumberScanner.REDACTED);
    assertThat(path("/v1/payments/pay_0123456789")).isEqualTo("/v1/payments/pay_0123456789");
  }

  @Test
  @DisplayName("a method is kept cut to 32 characters, or as redacted:card_number when it holds one")
  void methods() {
    assertThat(method("POST")).isEqualTo("POST");
    assertThat(method("X".repeat(3_000))).isEqualTo("X".repeat(LoggableRequest.MAX_METHOD));
    assertThat(method("4242424242424242")).isEqualTo(CardNumberScanner.REDACTED);
    assertThat(method("X".repeat(40) + "4242424242424242")).isEqualTo(CardNumberScanner.REDACTED);
  }

  @Test
  @DisplayName("a path or method holding an API key in force, the request's own or the admin token is kept as "
      + "redacted:api_key or redacted:admin_token, even past the cut")
  void credentialsInPathsAndMethods() {
    assertThat(path("/v1/keys/" + KEY)).isEqualTo("redacted:api_key");
    assertThat(path("/" + "a".repeat(300) + "/" + KEY)).isEqualTo("redacted:api_key");
    assertThat(path("/admin/" + ADMIN_TOKEN + "/pending")).isEqualTo("redacted:admin_token");
    assertThat(LoggableRequest.path("/pay/" + KEY + "-1", CREDENTIALS, KEY)).as("the request's own key, glued")
        .isEqualTo("redacted:api_key");
    // A presented token that is no key hides nothing: else any caller could blank its path in the log.
    assertThat(LoggableRequest.path("/pay/sk_wrong_key_1", CREDENTIALS, "sk_wrong_key_1")).isEqualTo("/pay/sk_wrong_key_1");
    assertThat(path("/pay/sk_wrong_key_1")).isEqualTo("/pay/sk_wrong_key_1");
    assertThat(method(KEY)).isEqualTo("redacted:api_key");
    assertThat(method("X".repeat(40) + ADMIN_TOKEN)).isEqualTo("redacted:admin_token");
  }
}
