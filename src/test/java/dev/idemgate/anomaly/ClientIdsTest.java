package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.MultiMap;
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
    assertThat(ClientIds.attribute(headers("X-Client-Id", "checkout-eu", "User-Agent", "okhttp/4.12"))).isEqualTo("checkout-eu");
    assertThat(ClientIds.attribute(headers("User-Agent", "okhttp/4.12"))).isEqualTo("ua:okhttp/4.12");
    assertThat(ClientIds.attribute(headers("X-Client-Id", "  ", "User-Agent", ""))).isEqualTo("unknown");
  }

  @Test
  @DisplayName("client ids are cut to 64 safe characters, so no header can forge a log line or bloat the view")
  void bounded() {
    String id = ClientIds.attribute(headers("X-Client-Id", "evil\r\nWARN forged line \"x\"=" + "y".repeat(500)));
    assertThat(id).hasSize(64).doesNotContain("\r", "\n", "\"", "=", " ");
    assertThat(ClientIds.attribute(headers("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"))).isEqualTo("ua:Mozilla/5.0_?X11?_Linux_x86_64?");
  }

  @Test
  @DisplayName("a client id or User-Agent holding a card number is kept as one redacted id, never the number: the "
      + "anomaly view and the Redis stream would otherwise hold it")
  void cardNumbersAreNotKept() {
    assertThat(ClientIds.attribute(headers("X-Client-Id", "4242424242424242"))).isEqualTo("redacted:card_number");
    assertThat(ClientIds.attribute(headers("X-Client-Id", "shop 4242 4242 4242 4242"))).isEqualTo("redacted:card_number");
    assertThat(ClientIds.attribute(headers("User-Agent", "app/1.0 pan=4000-0566-5566-5556")))
        .isEqualTo("ua:redacted:card_number");
    // Beyond the 64 characters kept, still found: cut short, its digits would be left in the id.
    assertThat(ClientIds.attribute(headers("X-Client-Id", "x".repeat(56) + "4242424242424242")))
        .isEqualTo("redacted:card_number");
    assertThat(ClientIds.attribute(headers("X-Client-Id", "checkout-eu-20261201"))).isEqualTo("checkout-eu-20261201");
  }
}
