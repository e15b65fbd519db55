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
}
