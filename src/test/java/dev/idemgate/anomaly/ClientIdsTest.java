package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.auth.MerchantKeys;
import dev.idemgate.config.ConfigLoader;
import io.vertx.core.MultiMap;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class ClientIdsTest {
  private static MultiMap headers(String... pairs) {
    MultiMap m = MultiMap.caseInsensitiveMultiMap();
    for (int i = 0; i < pairs.length; i += 2) {
      m.add(pairs[i], pairs[i + 1]);
    }
    return m;
  }

  @Test
  @DisplayName("X-Client-Id names the client, else the User-Agent, else unknown")
  void attribution() {
    assertThat(ClientIds.attribute(headers("X-Client-Id", "checkout-eu", "User-Agent", "okhttp/4.12"), CredentialScanner.NONE)).isEqualTo("checkout-eu");
    assertThat(ClientIds.attribute(headers("User-Agent", "okhttp/4.12"), CredentialScanner.NONE)).isEqualTo("ua:okhttp/4.12");
    assertThat(ClientIds.attribute(headers("X-Client-Id", "  ", "User-Agent", ""), CredentialScanner.NONE)).isEqualTo("unknown");
  }

  @Test
  @DisplayName("client ids are cut to 64 safe characters, so no header can forge a log line or bloat the view")
  void bounded() {
    String id = ClientIds.attribute(headers("X-Client-Id", "evil\r\nWARN forged line \"x\"=" + "y".repeat(500)), CredentialScanner.NONE);
    assertThat(id).hasSize(64).doesNotContain("\r", "\n", "\"", "=", " ");
    assertThat(ClientIds.attribute(headers("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"), CredentialScanner.NONE)).isEqualTo("ua:Mozilla/5.0_?X11?_Linux_x86_64?");
  }

  @Test
  @DisplayName("a client id or User-Agent holding a card number is kept as one redacted id, never the number: the "
      + "anomaly view and the Redis stream would otherwise hold it")
  void cardNumbersAreNotKept() {
    assertThat(ClientIds.attribute(headers("X-Client-Id", "4242424242424242"), CredentialScanner.NONE)).isEqualTo("redacted:card_number");
    assertThat(ClientIds.attribute(headers("X-Client-Id", "shop 4242 4242 4242 4242"), CredentialScanner.NONE)).isEqualTo("redacted:card_number");
    assertThat(ClientIds.attribute(headers("User-Agent", "app/1.0 pan=4000-0566-5566-5556"), CredentialScanner.NONE))
        .isEqualTo("ua:redacted:card_number");
    // Beyond the 64 characters kept, still found: cut short, its digits would be left in the id.
    assertThat(ClientIds.attribute(headers("X-Client-Id", "x".repeat(56) + "4242424242424242"), CredentialScanner.NONE))
        .isEqualTo("redacted:card_number");
    assertThat(ClientIds.attribute(headers("X-Client-Id", "checkout-eu-20261201"), CredentialScanner.NONE)).isEqualTo("checkout-eu-20261201");
  }

  @Test
  @DisplayName("a client id or User-Agent holding an API key (the request's own, any in force) or the admin token is kept "
      + "as redacted:api_key or redacted:admin_token, never the credential: ids are kept in Redis and shown on the admin view")
  void credentialsAreNotKept() {
    CredentialScanner credentials = new CredentialScanner(MerchantKeys.load(ConfigLoader.load(Optional.empty(),
        Map.of("IDEMGATE_API_KEYS", "shop=sk_test_shop_key,other=sk_test_other_key"))), Optional.of("admin-token-kept-nowhere"));
    assertThat(ClientIds.attribute(headers("X-Client-Id", "sk_test_other_key"), credentials)).isEqualTo("redacted:api_key");
    assertThat(ClientIds.attribute(headers("X-Client-Id", "checkout/sk_test_shop_key"), credentials))
        .isEqualTo("redacted:api_key");
    assertThat(ClientIds.attribute(headers("X-Client-Id", "checkout-eu", "Authorization", "Bearer sk_test_shop_key"),
        credentials)).isEqualTo("checkout-eu");
    assertThat(ClientIds.attribute(headers("X-Client-Id", "app-sk_test_shop_key", "Authorization", "Bearer sk_test_shop_key"),
        credentials)).as("the request's own key, glued to other characters").isEqualTo("redacted:api_key");
    assertThat(ClientIds.attribute(headers("User-Agent", "app/1.0 token=admin-token-kept-nowhere"), credentials))
        .isEqualTo("ua:redacted:admin_token");
    // Cut at 64 characters, a key past the cut would leave its first characters behind: the whole header is scanned.
    assertThat(ClientIds.attribute(headers("X-Client-Id", "x".repeat(60) + " sk_test_other_key"), credentials))
        .isEqualTo("redacted:api_key");
  }
}
