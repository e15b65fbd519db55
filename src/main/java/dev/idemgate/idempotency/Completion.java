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
 *
 * <p>A succeeded completion carries {@code ifChargeTaken}: the pending completion written instead
 * when the ledger already holds its charge id ({@code providerReference}) as another payment's of the
 * same acquirer (see {@code IdempotencyStore#COMPLETE}). An acquirer that deduplicates by card and
 * amount, or by merchant reference, answers a second order with the first one's charge: recorded as
 * succeeded, the second order's client would be told it was paid when no money moved for it. Its
 * 202 and the wait before recovery's first inquiry are those of an unknown outcome.
 */
public record Completion(
    RecordState state,
    StoredResponse response,
    Duration keyTtl,
    String paymentStatus,
    String provider,
    String providerReference,
    String declineCode,
    Duration nextInquiryIn,
    Completion ifChargeTaken) {

  /**
   * COMPLETE writes the pending alternative's body and next inquiry, and otherwise 202 and this
   * completion's key expiry: they must be the alternative's.
   */
  public Completion {
    boolean checked = state == RecordState.COMPLETED && "succeeded".equals(paymentStatus) && providerReference != null;
    if (checked != (ifChargeTaken != null) || ifChargeTaken != null && !(ifChargeTaken.state() == RecordState.PENDING
        && ifChargeTaken.ifChargeTaken() == null && ifChargeTaken.nextInquiryIn() != null
        && ifChargeTaken.response().status() == 202 && ifChargeTaken.keyTtl().equals(keyTtl)
        && ifChargeTaken.response().expiresAt().equals(response.expiresAt()))) {
      throw new IllegalArgumentException("a succeeded completion with a charge id, and only it, carries the pending "
          + "completion (202, same key expiry) written if another payment has that charge id");
    }
  }

  /** A pending completion: an unknown outcome, or a charge id already another payment's. */
  public static Completion pending(StoredResponse response, Duration keyTtl, String provider, Duration nextInquiryIn) {
    return new Completion(RecordState.PENDING, response, keyTtl, "pending", provider, null, null, nextInquiryIn, null);
  }

  /**
   * What became of a fenced write: it landed ({@code RECORDED}); it landed as its
   * {@link #ifChargeTaken} completion, pending, because another payment of the acquirer holds its
   * charge id ({@code CHARGE_TAKEN}); or another owner (a newer epoch) had taken the record over.
   */
  public enum Result { RECORDED, CHARGE_TAKEN, FENCED }
}
