package dev.idemgate.idempotency;

/**
 * The key the gateway sends to the provider so that the provider deduplicates too:
 * hex(SHA-256(merchant_id ":" idempotency_key)) (DESIGN §1).
 *
 * <p>A key used again after its retention ran out is a new payment, and must not reach the provider
 * under the old provider key: a provider that still remembers the first charge would answer the new
 * payment with the old one, and nothing would be charged. So when the ledger already holds a payment
 * under the first provider key, the claim uses hex(SHA-256(merchant_id ":" idempotency_key "#" payment_id))
 * instead. {@link IdempotencyStore}'s claim SQL makes that choice; {@link #reused} mirrors it.
 */
public final class ProviderKeys {
  private ProviderKeys() {}

  /** The provider key of a key's first payment. */
  public static String of(String merchantId, String idempotencyKey) {
    return Fingerprint.sha256Hex(merchantId + ":" + idempotencyKey);
  }

  /** The provider key of a later payment under the same (expired) key. */
  public static String reused(String merchantId, String idempotencyKey, String paymentId) {
    return Fingerprint.sha256Hex(merchantId + ":" + idempotencyKey + "#" + paymentId);
  }
}
