package dev.idemgate.recovery;

import static dev.idemgate.support.TestGateway.MERCHANT_A;

import dev.idemgate.support.TestDb;

/** Pending records written straight into the database, for the recovery ITs that need one due at once. */
final class DuePendingPayments {
  private DuePendingPayments() {
  }

  /**
   * A payment of MERCHANT_A answered 202 five seconds ago (past its late-charge window), asked about
   * once, its next inquiry due now; {@code paymentId} is also its key, its provider key is
   * {@code pk-<paymentId>}, and it was claimed for {@code providerId} (as {@code http <name>}).
   */
  static void insert(TestDb db, String paymentId, long amount, String providerId) {
    db.query("""
        INSERT INTO idemgate.idempotency_keys (merchant_id, idempotency_key, fingerprint, state, epoch, generation,
          payment_id, provider_key, lease_expires_at, amount, currency, response_status, response_body, expires_at,
          inquiry_attempts, next_inquiry_at, created_at, provider_id)
        VALUES ($1, $2, 'f', 'PENDING', 1, 1, $2, 'pk-' || $2, now() - interval '5 seconds', $3, 'EUR', 202, '{}',
          now() + interval '1 day', 1, now(), date_trunc('milliseconds', now() - interval '5 seconds'), $4)""",
        MERCHANT_A, paymentId, amount, providerId);
  }
}
