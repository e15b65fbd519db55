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
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A claim the provider never saw is released once a late charge is impossible (the late-charge
 * window after its creation: the lease plus twice the provider timeout), neither before nor at the
 * next step of a long backoff. A 502 for a held key promises the key back by then in Retry-After.
 */
class LateChargeWindowIT {
  /** Lease 3 s + 2 x provider timeout 3 s. */
  private static final Duration WINDOW = Duration.ofSeconds(9);

  @Test
  @DisplayName("a claim the provider never saw, taken over before its late-charge window ends, is released when "
      + "the window ends (9 s), not at the next step of the backoff (20 s)")
  void releasedWhenTheWindowEnds() {
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx());
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_LEASE", "3s",
             "IDEMGATE_PROVIDER_TIMEOUT", "3s",
             "IDEMGATE_RECOVERY_INTERVAL", "200ms",
             "IDEMGATE_RECOVERY_BACKOFF", "5s,20s"))) {
      String key = Http.newKey();
      JsonObject body = Http.payment(1300, "tok_visa");
      IdempotencyStore store = new IdempotencyStore(db.pool(), http.vertx().getOrCreateContext(), 2, Duration.ofSeconds(5),
          Duration.ofSeconds(3), "simulator");
      Instant created = Instant.now();
      ClaimRequest claim = new ClaimRequest(MERCHANT_A, new IdempotencyKey(key), PaymentService.fingerprint(body),
          PaymentJson.newPaymentId(created), 1300, "EUR", null, null, null);
      assertThat(Http.await(store.claim(claim))).isInstanceOf(StoreClaim.Claimed.class);
      // The instance that claimed it died before sending the charge; its lease is over at once,
      // so recovery takes the record over while a late charge is still possible.
      db.query("UPDATE idemgate.idempotency_keys SET lease_expires_at = now() - interval '1 second' "
          + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);

      Waits.eventually(Duration.ofSeconds(30), () -> db.scalar("SELECT 1 FROM idemgate.idempotency_keys "
          + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key) == null, "recovery releases the record");
      Duration released = Duration.between(created, Instant.now());
      System.out.println("released " + released.toMillis() + " ms after the claim; window " + WINDOW.toMillis() + " ms");
      assertThat(released).as("released after the late-charge window").isGreaterThanOrEqualTo(WINDOW);
      assertThat(released).as("released soon after the window ends, not at the 20 s backoff step")
          .isLessThan(WINDOW.plusSeconds(5));
    }
  }
}
