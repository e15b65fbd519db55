package dev.idemgate.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.support.Http;
import dev.idemgate.support.ScratchDatabase;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.sqlclient.Row;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * Recovery's "a late charge is impossible" on an instance whose clock runs ahead of the one that
 * claimed the payment (here: of PostgreSQL's, which stamps the claim). A database of its own, so
 * that no other gateway's recovery takes the record; the gateway's own recovery waits an hour, and a
 * second recovery verticle on a clock ten minutes fast does the work (its inquiries go to the
 * gateway's provider verticle).
 */
class LateChargeClockSkewIT {
  /** Lease 3 s + 2 x provider timeout 3 s. */
  private static final Duration WINDOW = Duration.ofSeconds(9);
  private static final Duration FAST = Duration.ofMinutes(10);

  private static Http http;
  private static ScratchDatabase scratch;
  private static String url;

  @BeforeAll
  static void ownDatabase() {
    http = new Http();
    scratch = ScratchDatabase.create(http.vertx(), "idemgate_skew");
    url = scratch.url();
  }

  @AfterAll
  static void dropDatabase() {
    scratch.close();
    http.close();
  }

  @Test
  @DisplayName("recovery on a clock 10 min fast releases a claim the provider never saw only once the late-charge "
      + "window (9 s) has passed on PostgreSQL's clock, not at its first look")
  void fastRecoveryWaitsForTheWindow() {
    Map<String, String> settings = Map.of("IDEMGATE_PG_URL", url, "IDEMGATE_LEASE", "3s",
        "IDEMGATE_PROVIDER_TIMEOUT", "3s", "IDEMGATE_RECOVERY_BACKOFF", "5s,20s");
    Map<String, String> idle = new HashMap<>(settings);
    idle.put("IDEMGATE_RECOVERY_INTERVAL", "1h");
    Map<String, String> busy = new HashMap<>(settings);
    busy.put("IDEMGATE_RECOVERY_INTERVAL", "200ms");
    try (TestDb db = new TestDb(http.vertx(), url); TestGateway gateway = TestGateway.start(idle)) {
      GatewayConfig config = TestGateway.config(busy);
      String deployment = Http.await(gateway.gateway().vertx().deployVerticle(new RecoveryVerticle(config,
          new SimpleMeterRegistry(), Clock.offset(Clock.systemUTC(), FAST))));
      try {
        // A claim whose instance died before sending the charge: its lease is over at once, so
        // recovery takes it over (after its 4 s grace) while a late charge is still possible.
        db.query("""
            INSERT INTO idemgate.idempotency_keys (merchant_id, idempotency_key, fingerprint, state, epoch, generation,
              payment_id, provider_key, lease_expires_at, amount, currency, created_at, provider_id)
            VALUES ($1, 'k-skew', 'f', 'PROCESSING', 1, 1, 'pay_skew', 'pk-skew-' || $2, now() - interval '1 second',
              1300, 'EUR', date_trunc('milliseconds', now()), 'simulator')""", TestGateway.MERCHANT_A, scratch.name());

        Waits.eventually(Duration.ofSeconds(30), () -> db.scalar("SELECT 1 FROM idemgate.released_payments "
            + "WHERE id = 'pay_skew'") != null, "recovery releases the record");
        Row released = db.query("SELECT extract(epoch FROM released_at - created_at) * 1000 AS after_ms "
            + "FROM idemgate.released_payments WHERE id = 'pay_skew'").iterator().next();
        Duration after = Duration.ofMillis(released.getNumeric("after_ms").longValue());
        System.out.println("released " + after.toMillis() + " ms after the claim; window " + WINDOW.toMillis() + " ms");
        assertThat(after).as("released after the late-charge window, on PostgreSQL's clock").isGreaterThanOrEqualTo(WINDOW);
      } finally {
        Http.await(gateway.gateway().vertx().undeploy(deployment));
      }
    }
  }
}
