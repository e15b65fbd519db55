package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.recovery.RecoveryVerticle;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.ProxiedPostgres;
import dev.idemgate.support.ScratchDatabase;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** What an outage of PostgreSQL in the middle of recovery passes writes to the log: enough to see it, not a line per payment. */
class RecoveryOutageLogVolumeIT {
  private static final int PAYMENTS = 40;
  private static final String MERCHANT = "m_reclog";

  @Test
  @DisplayName("PostgreSQL gone while a recovery pass asks the acquirer about 40 payments, twice: every payment's failure "
      + "is logged (at DEBUG), but at most one WARN a second, the next one counting those not logged one by one "
      + "(before: one WARN per payment and pass)")
  void oneWarningASecondForPaymentsRecoveryCannotSettle() {
    Logger logger = (Logger) LoggerFactory.getLogger(RecoveryVerticle.class);
    Level level = logger.getLevel();
    logger.setLevel(Level.DEBUG);
    try (Http http = new Http();
         ScratchDatabase scratch = ScratchDatabase.create(http.vertx(), "idemgate_reclog");
         ProxiedPostgres proxied = ProxiedPostgres.start(scratch.url());
         TestDb db = new TestDb(http.vertx(), scratch.url())) {
      IdempotencyStore store = new IdempotencyStore(db.pool(), http.vertx().getOrCreateContext(), 4,
          Duration.ofSeconds(5), Duration.ofSeconds(2), "simulator");
      for (int i = 0; i < PAYMENTS; i++) {
        Http.await(store.claim(new ClaimRequest(MERCHANT, new IdempotencyKey("k" + i), "fp",
            PaymentJson.newPaymentId(Instant.now()), 100 + i, "EUR", null, null, null)));
      }
      // Each inquiry takes 1.5 s at the simulator: the test cuts PostgreSQL off while a pass waits for them.
      try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PG_URL", proxied.url(),
               "IDEMGATE_SIMULATOR_LATENCY_MS", "1500", "IDEMGATE_PROVIDER_TIMEOUT", "5s", "IDEMGATE_STORE_TIMEOUT", "1s",
               "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_RECOVERY_BATCH", "100"));
           CapturedLogs logs = CapturedLogs.of(RecoveryVerticle.class)) {
        long started = System.nanoTime();
        for (int round = 1; round <= 2; round++) {
          // Abandoned claims (their instance died a minute ago), due at once.
          db.query("UPDATE idemgate.idempotency_keys SET lease_expires_at = now() - interval '1 minute', "
              + "created_at = now() - interval '1 minute', next_inquiry_at = now() WHERE merchant_id = $1", MERCHANT);
          Waits.eventually(Duration.ofSeconds(10), () -> (Long) db.scalar("SELECT count(*) FROM idemgate.idempotency_keys "
              + "WHERE merchant_id = $1 AND lease_expires_at > now()", MERCHANT) == PAYMENTS, "recovery took every record");
          proxied.proxy().refuse();
          proxied.proxy().cutAll();
          int failedBy = PAYMENTS * round;
          Waits.eventually(Duration.ofSeconds(15), () -> failures(logs).size() >= failedBy,
              () -> "every payment's failure logged; so far " + failures(logs).size());
          proxied.proxy().pass();
          Waits.sleep(1_200); // the outage spans seconds, so that a later line has something to count
        }
        long seconds = (System.nanoTime() - started) / 1_000_000_000L;
        List<String> warnings = failures(logs).stream().filter(e -> e.getLevel() == Level.WARN)
            .map(ILoggingEvent::getFormattedMessage).toList();
        assertThat(warnings).as("WARN lines about payments recovery could not settle, in " + seconds + " s")
            .hasSizeBetween(1, (int) seconds + 2);
        assertThat(warnings).as("a later line counts the failures not logged one by one")
            .anyMatch(line -> line.matches(".*\\(\\d+ more since the last such line.*"));
      }
    } finally {
      logger.setLevel(level);
    }
  }

  private static List<ILoggingEvent> failures(CapturedLogs logs) {
    return logs.events().stream().filter(e -> e.getFormattedMessage().startsWith("recovery of payment ")
        && e.getFormattedMessage().contains(" failed")).toList();
  }
}
