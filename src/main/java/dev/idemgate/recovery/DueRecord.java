package dev.idemgate.recovery;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RecordState;
import dev.idemgate.provider.ChargeInquiry;
import java.time.Instant;

/**
 * A record recovery has taken over: its epoch is already bumped, so the instance that held it
 * before (and any other recovery pass) is fenced out until this pass is done with it.
 *
 * <p>{@code createdAt} and {@code takenAt} are both PostgreSQL's clock (the claim's and the take's
 * {@code now()}), so the record's age is read on one clock; {@code takeSentNanos} is this process's
 * {@link System#nanoTime()} just before the take was sent.
 */
record DueRecord(
    String merchantId,
    IdempotencyKey key,
    String fingerprint,
    RecordState state,
    int epoch,
    String paymentId,
    String providerKey,
    long amount,
    String currency,
    String merchantReference,
    Instant createdAt,
    int inquiryAttempts,
    Instant takenAt,
    long takeSentNanos) {

  /** What to ask the provider: the charge under the provider key, for this payment's amount and currency. */
  ChargeInquiry inquiry() {
    return new ChargeInquiry(providerKey, amount, currency);
  }

  /**
   * PostgreSQL's clock now, at the latest: its {@code now()} in the take came after the take was
   * sent, so no more time has passed since then than this process has counted since the sending.
   */
  Instant storeNowAtMost() {
    return takenAt.plusNanos(System.nanoTime() - takeSentNanos);
  }
}
