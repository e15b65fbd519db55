package dev.idemgate.idempotency;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class FingerprintTest {
  @Test
  @DisplayName("key order and spacing do not change the fingerprint")
  void orderAndSpacing() {
    JsonObject a = new JsonObject("{\"amount\":1999,\"currency\":\"EUR\",\"metadata\":{\"b\":\"2\",\"a\":\"1\"}}");
    JsonObject b = new JsonObject("{ \"metadata\" : { \"a\":\"1\", \"b\":\"2\" },\n \"currency\":\"EUR\", \"amount\": 1999 }");
    assertThat(Fingerprint.of("op", a)).isEqualTo(Fingerprint.of("op", b));
  }

  @Test
  @DisplayName("a different value or a different operation changes the fingerprint")
  void differences() {
    JsonObject a = new JsonObject("{\"amount\":1999}");
    assertThat(Fingerprint.of("op", a)).isNotEqualTo(Fingerprint.of("op", new JsonObject("{\"amount\":1998}")));
    assertThat(Fingerprint.of("op", a)).isNotEqualTo(Fingerprint.of("other", a));
    assertThat(Fingerprint.of("op", new JsonObject("{\"a\":\"1\"}"))).isNotEqualTo(Fingerprint.of("op", new JsonObject("{\"a\":1}")));
  }

  @Test
  @DisplayName("canonical JSON sorts keys, drops spacing and writes numbers in one form")
  void canonical() {
    assertThat(Fingerprint.canonicalJson(new JsonObject("{\"b\": [1, 2.50, 1e2], \"a\": null, \"c\": \"x\\\"y\"}")))
        .isEqualTo("{\"a\":null,\"b\":[1,2.5,100],\"c\":\"x\\\"y\"}");
  }
}
