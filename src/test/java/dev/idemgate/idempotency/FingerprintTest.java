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

  @Test
  @DisplayName("strings are written exactly as Json.encode writes them, for every char, so stored fingerprints still match")
  void stringsLikeJackson() {
    for (int c = 0; c <= 0xFFFF; c++) {
      String text = "a" + (char) c + "b";
      StringBuilder ours = new StringBuilder();
      Fingerprint.writeString(ours, text);
      assertThat(ours.toString()).as("char U+%04X", c).isEqualTo(io.vertx.core.json.Json.encode(text));
    }
    String pair = "\uD83D\uDE00 and \u00e9";
    StringBuilder ours = new StringBuilder();
    Fingerprint.writeString(ours, pair);
    assertThat(ours.toString()).isEqualTo(io.vertx.core.json.Json.encode(pair));
  }

  @Test
  @DisplayName("integers of every width canonicalise like the same value written as a decimal")
  void integersLikeDecimals() {
    for (long n : new long[] {0, 1, -1, 10, 1000, 1999, 1_000_000_000_000L, Long.MAX_VALUE, Long.MIN_VALUE}) {
      assertThat(Fingerprint.canonicalJson(n)).isEqualTo(Fingerprint.canonicalJson(new java.math.BigDecimal(n + ".000")));
    }
    assertThat(Fingerprint.canonicalJson(100)).isEqualTo("100");
    assertThat(Fingerprint.canonicalJson((short) 7)).isEqualTo("7");
  }
}
