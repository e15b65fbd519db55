package dev.idemgate.idempotency;

/**
 * The key the gateway sends to the provider so that the provider deduplicates too:
 * hex(SHA-256(merchant_id ":" idempotency_key)). A key reused after it expired gets a new
 * generation, and from the second generation on the generation is part of the hash: otherwise a
 * provider that still remembers the first charge would answer the new payment with the old one.
 */
public final class ProviderKeys {
  private ProviderKeys() {}

  public static String of(String merchantId, String idempotencyKey) {
    return Fingerprint.sha256Hex(merchantId + ":" + idempotencyKey);
  }

  /** The key of a given generation; {@code IdempotencyStore}'s re-claim SQL computes the same. */
  public static String of(String merchantId, String idempotencyKey, int generation) {
    return generation <= 1 ? of(merchantId, idempotencyKey) : Fingerprint.sha256Hex(merchantId + ":" + idempotencyKey + "#" + generation);
  }
}
