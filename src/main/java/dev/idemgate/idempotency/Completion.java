package dev.idemgate.idempotency;

import java.time.Instant;

/**
 * The end state written for a claim: the record state (COMPLETED or PENDING), the stored response,
 * and the ledger row's status and provider fields.
 */
public record Completion(
    RecordState state,
    StoredResponse response,
    String paymentStatus,
    String provider,
    String providerReference,
    String declineCode,
    Instant nextInquiryAt) {

  /** Whether the fenced write landed, or another owner (a newer epoch) had taken the record over. */
  public enum Result { RECORDED, FENCED }
}
