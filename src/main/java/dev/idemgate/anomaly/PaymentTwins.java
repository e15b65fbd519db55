package dev.idemgate.anomaly;

import dev.idemgate.idempotency.Fingerprint;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.payment.PaymentRequest;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What makes two payments "the same" for twin detection, and how a key is named without being shown.
 * The payment fingerprint covers only the configured fields ({@code duplicate_fields}), never the
 * idempotency key, so two keys carrying one payment collide on purpose.
 */
public final class PaymentTwins {
  /** Hex characters kept from a SHA-256: 128 bits, plenty against collisions, half the Redis memory. */
  static final int HASH_CHARS = 32;

  private PaymentTwins() {}

  /** The payment fingerprint over {@code fields} of the request: canonical JSON, SHA-256, 128 bits. */
  public static String fingerprint(List<String> fields, PaymentRequest request) {
    Map<String, Object> selected = new TreeMap<>();
    for (String field : fields) {
      selected.put(field, value(field, request));
    }
    return Fingerprint.sha256Hex("twin\n" + Fingerprint.canonicalJson(selected)).substring(0, HASH_CHARS);
  }

  /**
   * The name a key goes by in Redis and the admin view: the provider key of its first generation,
   * hex(SHA-256(merchant ":" key)). The key itself is never stored, and the hash finds the payment in
   * the ledger ({@code payments.provider_key}) and the charge in the provider's log.
   */
  public static String keyHash(String merchantId, IdempotencyKey key) {
    return ProviderKeys.of(merchantId, key.value());
  }

  private static Object value(String field, PaymentRequest r) {
    switch (field) {
      case "amount":
        return r.amount();
      case "currency":
        return r.currency();
      case "source":
        return r.source();
      case "merchant_reference":
        return r.merchantReference();
      case "description":
        return r.description();
      case "metadata":
        return r.metadata() == null ? null : new JsonObject(r.metadata().getMap());
      default:
        throw new IllegalArgumentException("not a fingerprint field: " + field);
    }
  }
}
