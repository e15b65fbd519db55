package dev.idemgate.bench;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;

/**
 * The requests the bench sends. A key's body is a pure function of the key, so any later request
 * on the same key (a replay, a duplicate retry) carries the identical payload and is never taken
 * for key reuse (422). The merchant reference is the key itself: real fresh payments differ, and
 * identical payloads under many keys would look like the duplicate-payment anomaly of DESIGN §7.
 */
public final class PaymentTraffic {
  private final String keyPrefix;
  private final int declinePercent;

  public PaymentTraffic(String keyPrefix, int declinePercent) {
    this.keyPrefix = keyPrefix;
    this.declinePercent = declinePercent;
  }

  public String key(long sequence) {
    return keyPrefix + "-" + sequence;
  }

  public Buffer body(long sequence) {
    return body(key(sequence), declines(sequence) ? "tok_decline" : "tok_visa");
  }

  /** Declines are spread by a hash of the sequence number, the same for every send of one key. */
  boolean declines(long sequence) {
    return declinePercent > 0 && Math.floorMod(Long.hashCode(sequence * 0x9E3779B97F4A7C15L), 100) < declinePercent;
  }

  static Buffer body(String key, String source) {
    return new JsonObject().put("amount", 1999).put("currency", "EUR").put("source", source)
        .put("merchant_reference", key).toBuffer();
  }
}
