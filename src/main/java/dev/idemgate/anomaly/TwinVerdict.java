package dev.idemgate.anomaly;

import java.time.Instant;

/**
 * What the twin check said about one {@code POST /pay}. Only {@link Reject} stops a request; every
 * other verdict lets it go on to the idempotency gate.
 */
public sealed interface TwinVerdict {
  /** No verdict: the check is off, or Redis failed or was too slow. The payment is never held up. */
  record Unobserved() implements TwinVerdict {}

  /**
   * The first payment with this fingerprint in the window: later ones under other keys are its twins.
   *
   * @param anchor the value this check stored as the fingerprint's anchor ({@code keyHash|millis})
   */
  record First(String keyHash, String anchor) implements TwinVerdict {}

  /** The same key again (a healthy retry, or the retry of a twin that went through): never a twin. */
  record SameKey() implements TwinVerdict {}

  /**
   * A twin that goes on: any under policy flag; under policy reject, one declared intended or one
   * whose original charged nothing.
   *
   * @param anchor the value this check stored as the fingerprint's anchor when it made the twin the
   *     one to compare with (its original charged nothing), else null
   * @param originalCharged whether its original was, or may have been, charged (the ledger says so, or
   *     cannot say: in flight, or the lookup failed). Only then is the twin held against its client: a
   *     new key after a decline or a release is what a client should send, nothing having been charged
   */
  record Allowed(Twin twin, boolean intended, String anchor, boolean originalCharged) implements TwinVerdict {}

  /** A twin refused with 409 duplicate_payment_suspected; nothing is claimed or charged. */
  record Reject(Twin twin) implements TwinVerdict {}

  /**
   * The original payment a twin repeats.
   *
   * @param originalKeyHash the original's provider key, hex(SHA-256(merchant ":" key))
   * @param originalAtMillis when the original arrived
   * @param originalPaymentId the original's payment id when the ledger was asked and has it, else null
   * @param originalCreatedAt that payment's {@code created_at} as the ledger has it (PostgreSQL's
   *     clock, when it was claimed: a little after {@code originalAtMillis}), else null
   */
  record Twin(String originalKeyHash, long originalAtMillis, String originalPaymentId, Instant originalCreatedAt) {}
}
