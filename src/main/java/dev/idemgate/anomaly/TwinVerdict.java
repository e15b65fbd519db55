package dev.idemgate.anomaly;

/**
 * What the twin check said about one {@code POST /pay}. Only {@link Reject} stops a request; every
 * other verdict lets it go on to the idempotency gate.
 */
public sealed interface TwinVerdict {
  /** No verdict: the check is off, or Redis failed or was too slow. The payment is never held up. */
  record Unobserved() implements TwinVerdict {}

  /** The first payment with this fingerprint in the window: it anchors later twins. */
  record First(String merchantId, String fingerprint, String keyHash) implements TwinVerdict {}

  /** The same key again (a healthy retry, or the retry of an allowed twin): never a twin. */
  record SameKey() implements TwinVerdict {}

  /** A twin that goes on: flagged under policy flag, or declared intended under policy reject. */
  record Allowed(Twin twin) implements TwinVerdict {}

  /** A twin refused with 409 duplicate_payment_suspected; nothing is claimed or charged. */
  record Reject(Twin twin) implements TwinVerdict {}

  /**
   * The original payment a twin repeats.
   *
   * @param originalPaymentId the original payment's id, or null while it is still in flight
   * @param originalAtMillis when the original arrived
   */
  record Twin(String originalKeyHash, long originalAtMillis, String originalPaymentId) {}
}
