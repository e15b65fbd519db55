package dev.idemgate.bench.jmh;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;

/** The request bodies the benchmarks work on: the typical one of the API docs, a fuller one, and two hostile ones. */
final class Requests {
  static final String TYPICAL = "{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"merchant_reference\":\"order-1\"}";

  /** Every optional field, metadata and digits in the text: the scan and the canonical form do the most work. */
  static final String FULL = "{\"merchant_reference\":\"order-2026-11-28-000123\",\"source\":\"tok_visa\",\"currency\":\"EUR\","
      + "\"amount\":1999,\"description\":\"Order 2026-11-28 #000123, 3 items, call 0049 30 1234567 on delivery\","
      + "\"metadata\":{\"customer\":\"cus_8f2d1c\",\"cart\":\"cart_55120\",\"channel\":\"web\",\"campaign\":\"bf-2026\"}}";

  /**
   * A body near the 64 KiB limit whose description is 1,800 UUIDs, each holding a Luhn-valid
   * 4-4-4-4 run: a body built to make the card scan check for a reference around every run.
   */
  static final String REFERENCES = "{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"description\":\""
      + "abcdefab-4242-4242-4242-4242abcdefab ".repeat(1_800) + "\"}";

  /**
   * A body under the 64 KiB limit of one member with a 32,000-character name holding 16,000 zeros: a
   * scan that built each element's path would copy the name for every element.
   */
  static final String LONG_NAME = "{\"" + "a".repeat(32_000) + "\":[" + "0,".repeat(15_999) + "0]}";

  private Requests() {}

  static Buffer buffer(String json) {
    return Buffer.buffer(json);
  }

  static JsonObject object(String json) {
    return new JsonObject(json);
  }
}
