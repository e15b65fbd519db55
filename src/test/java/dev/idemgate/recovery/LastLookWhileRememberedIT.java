package dev.idemgate.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.provider.AcquirerServer;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The inquiry schedule of a pending payment and the acquirer's memory ({@code provider_key_retention}):
 * the backoff's long steps must not jump past the end of that memory, or an acquirer back from an
 * outage in time is never asked while its "never seen" still counts.
 */
class LastLookWhileRememberedIT {
  @Test
  @DisplayName("a pending payment whose acquirer could not be reached is asked once more before provider_key_retention "
      + "ends, though the backoff's next step lies past it: the acquirer, back by then, never saw it, so its key is freed "
      + "without an operator")
  void askedAgainBeforeTheAcquirerForgets() {
    int port = TestGateway.freePort();
    String provider = "last-look-" + System.nanoTime();
    String paymentId = "pay_last_look_" + System.nanoTime();
    // Late-charge window 2 s + 2 x 1 s; the acquirer remembers 30 s; after the first inquiry the next
    // step of the backoff is a minute away.
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PROVIDER", "http",
            "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:" + port, "IDEMGATE_PROVIDER_NAME", provider,
            "IDEMGATE_LEASE", "2s", "IDEMGATE_PROVIDER_TIMEOUT", "1s", "IDEMGATE_PROVIDER_KEY_RETENTION", "30s",
            "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_RECOVERY_BACKOFF", "500ms,1m"));
        Http http = new Http();
        TestDb db = new TestDb(http.vertx())) {
      // A payment answered 202 five seconds ago (past its late-charge window), due for its second inquiry
      // now, while nothing listens on the acquirer's port.
      DuePendingPayments.insert(db, paymentId, 1400, "http " + provider);
      try {
        Waits.eventually(Duration.ofSeconds(10), () -> (Integer) db.scalar("SELECT inquiry_attempts FROM "
            + "idemgate.idempotency_keys WHERE payment_id = $1", paymentId) >= 2
            && Boolean.TRUE.equals(db.scalar("SELECT next_inquiry_at > now() + interval '7 seconds' FROM "
            + "idemgate.idempotency_keys WHERE payment_id = $1", paymentId)), "an inquiry, unanswered");

        AcquirerServer acquirer = new AcquirerServer(port, 0, 0, true);
        String deployment = Http.await(http.vertx().deployVerticle(acquirer));
        try {
          Waits.eventually(Duration.ofSeconds(35), () -> db.scalar("SELECT 1 FROM idemgate.released_payments WHERE id = $1",
              paymentId) != null, "recovery asks the acquirer (back now) before it forgets, and frees the key it never saw");
          assertThat(db.scalar("SELECT reason FROM idemgate.released_payments WHERE id = $1", paymentId))
              .isEqualTo("provider_never_saw_it");
        } finally {
          Http.await(http.vertx().undeploy(deployment));
        }
      } finally {
        db.query("DELETE FROM idemgate.idempotency_keys WHERE payment_id = $1", paymentId);
      }
    }
  }
}
