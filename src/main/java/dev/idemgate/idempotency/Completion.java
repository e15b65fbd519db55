package dev.idemgate.idempotency;

import java.time.Duration;

/**
 * The end state written for a claim: the record state (COMPLETED or PENDING), the stored response,
 * the ledger row's status and provider fields, and two durations that PostgreSQL counts from its own
 * {@code now()} when it writes the record: how long the key is kept ({@code keyTtl}, the expiry),
 * and, for a pending payment, how long until recovery asks the provider ({@code nextInquiryIn}, or
 * null). They are durations, not moments, because PostgreSQL compares what they give with its own
 * clock: a moment on the gateway's clock would expire a key early by as much as PostgreSQL's clock
 * runs ahead. The response's {@link StoredResponse#expiresAt} is taken before the statement is
 * sent, so the key outlives the moment the client is given.
 */
public record Completion(
    RecordState state,
    StoredResponse response,
    Duration keyTtl,
    String paymentStatus,
    String provider,
    String providerReference,
    String declineCode,
    Duration nextInquiryIn) {

  /** Whether the fenced write landed, or another owner (a newer epoch) had taken the record over. */
  public enum Result { RECORDED, FENCED }
}
