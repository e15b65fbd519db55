package dev.idemgate.recovery;

import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.StoreClaim;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.payment.PaymentService;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.time.Instant;

/** Pending payments made for the operator-verdict ITs, as recovery leaves one the acquirer may have forgotten. */
final class ForgottenPendingPayments {
  private ForgottenPendingPayments() {
  }

  /**
   * A payment of MERCHANT_A under {@code key} left pending two days ago, past provider_key_retention
   * (the acquirer may have forgotten it, so a verdict decides), with its pending ledger row, as
   * recovery leaves one; recovery's next look is an hour away, so only a verdict touches it. Returns
   * its payment id.
   */
  static String make(TestDb db, Vertx vertx, String key, long amount) {
    JsonObject body = Http.payment(amount, "tok_visa");
    IdempotencyStore store = new IdempotencyStore(db.pool(), vertx.getOrCreateContext(), 2, Duration.ofSeconds(5),
        Duration.ofSeconds(3), "simulator");
    ClaimRequest claim = new ClaimRequest(MERCHANT_A, new IdempotencyKey(key), PaymentService.fingerprint(body),
        PaymentJson.newPaymentId(Instant.now()), amount, "EUR", body.getString("merchant_reference"), null, null);
    assertThat(Http.await(store.claim(claim))).isInstanceOf(StoreClaim.Claimed.class);
    db.query("UPDATE idemgate.idempotency_keys SET state = 'PENDING', response_status = 202, response_body = '{}', "
        + "expires_at = now() + interval '1 day', next_inquiry_at = now() + interval '1 hour', "
        + "lease_expires_at = now() - interval '1 minute', created_at = now() - interval '2 days' "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
    db.query("INSERT INTO idemgate.payments (id, merchant_id, provider_key, amount, currency, status, provider, created_at) "
        + "SELECT payment_id, merchant_id, provider_key, amount, currency, 'pending', 'simulator', created_at "
        + "FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
    return claim.paymentId();
  }
}
