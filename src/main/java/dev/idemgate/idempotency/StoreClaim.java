package dev.idemgate.idempotency;

import java.time.Duration;
import java.time.Instant;

/** What the PostgreSQL claim decided; the same decisions as the Redis gate, made by the source of truth. */
public sealed interface StoreClaim {
  /**
   * The row was inserted (or an expired key re-claimed) and committed: this request owns it at
   * {@code epoch}. {@code claimedAtNanos} is {@link System#nanoTime()} just before the claim was
   * sent, so the lease counted from it never outlives the one PostgreSQL counts. {@code createdAt}
   * is PostgreSQL's clock at the claim (the payment's {@code created_at}).
   */
  record Claimed(String paymentId, String providerKey, int epoch, Instant createdAt, long claimedAtNanos) implements StoreClaim {}

  /**
   * Another request owns the key with the same payload: claimed {@code age} ago, its lease running
   * out in {@code leaseLeft} (negative once it has), both on PostgreSQL's clock. {@code takenOver}:
   * recovery (or an operator's verdict) has taken the record over and is asking the provider about
   * it, until the lease it took runs out.
   */
  record InFlight(Duration age, Duration leaseLeft, boolean takenOver) implements StoreClaim {}

  /** The key is completed with the same payload. */
  record Completed(StoredResponse response) implements StoreClaim {}

  /**
   * The provider outcome is unknown; recovery owns the record. The stored 202 is replayed.
   * {@code nextInquiryIn}: when recovery next asks the provider about it, on PostgreSQL's clock
   * (negative once due; while an inquiry is under way, the end of the hold recovery took for it).
   */
  record Pending(StoredResponse response, Duration nextInquiryIn) implements StoreClaim {}

  /** The key was used with another payload, whose fingerprint is {@code heldFingerprint}. */
  record Mismatch(String heldFingerprint) implements StoreClaim {}
}
