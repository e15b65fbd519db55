package dev.idemgate.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
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

/**
 * What many pending payments older than {@code provider_key_retention} write to the log: recovery
 * asks about each of them at every inquiry, and none can settle (the acquirer's "never seen" is not
 * believed), so a line per payment and inquiry flooded the log with every pass. A database of its
 * own: the gateway's recovery takes only these records.
 */
class ForgottenPendingLogVolumeIT {
  private static final int PAYMENTS = 30;
  private static final String MERCHANT = "m_forgotlog";

  @Test
  @DisplayName("30 pending payments past provider_key_retention, each asked about every pass: every inquiry is logged "
      + "(at DEBUG), but at most one WARN a second, a later one counting those not logged one by one "
      + "(before: one WARN per payment and inquiry)")
  void oneWarningASecondForPaymentsPastTheAcquirersMemory() {
    Logger logger = (Logger) LoggerFactory.getLogger(RecoveryVerticle.class);
    Level level = logger.getLevel();
    logger.setLevel(Level.DEBUG);
    try (Http http = new Http();
         ScratchDatabase scratch = ScratchDatabase.create(http.vertx(), "idemgate_forgotlog");
         TestDb db = new TestDb(http.vertx(), scratch.url())) {
      IdempotencyStore store = new IdempotencyStore(db.pool(), http.vertx().getOrCreateContext(), 4,
          Duration.ofSeconds(5), Duration.ofSeconds(2), "simulator");
      for (int i = 0; i < PAYMENTS; i++) {
        Http.await(store.claim(new ClaimRequest(MERCHANT, new IdempotencyKey("k" + i), "fp",
            PaymentJson.newPaymentId(Instant.now()), 100 + i, "EUR", null, null, null)));
      }
      // Pending, claimed two days ago (the default retention is a day), due at once.
      db.query("UPDATE idemgate.idempotency_keys SET state = 'PENDING', response_status = 202, response_body = '{}', "
          + "expires_at = now() + interval '1 day', next_inquiry_at = now(), lease_expires_at = now() - interval '1 minute', "
          + "created_at = now() - interval '2 days' WHERE merchant_id = $1", MERCHANT);
      long started = System.nanoTime();
      try (CapturedLogs logs = CapturedLogs.of(RecoveryVerticle.class);
           TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PG_URL", scratch.url(),
               "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_RECOVERY_BACKOFF", "5s,200ms"))) {
        int inquiries = PAYMENTS * 3;
        Waits.eventually(Duration.ofSeconds(20), () -> beyondRetention(logs).size() >= inquiries,
            () -> "every payment asked about three times; so far " + beyondRetention(logs).size() + " inquiries");
        long seconds = (System.nanoTime() - started) / 1_000_000_000L;
        assertThat(warnings(logs)).as("WARN lines about payments past provider_key_retention, in " + seconds + " s")
            .hasSizeBetween(1, (int) seconds + 2);
        // Past a second of passes, a WARN counts the ones not logged one by one.
        Waits.eventually(Duration.ofSeconds(10), () -> warnings(logs).stream()
            .anyMatch(line -> line.matches(".*\\(\\d+ more since the last such line.*")), () -> "a counting line");
      }
      assertThat((Long) db.scalar("SELECT count(*) FROM idemgate.idempotency_keys WHERE merchant_id = $1 "
          + "AND state = 'PENDING'", MERCHANT)).as("every one still pending, for an operator").isEqualTo(PAYMENTS);
    } finally {
      logger.setLevel(level);
    }
  }

  private static List<ILoggingEvent> beyondRetention(CapturedLogs logs) {
    return logs.events().stream().filter(e -> e.getFormattedMessage().contains("more than provider_key_retention")).toList();
  }

  private static List<String> warnings(CapturedLogs logs) {
    return beyondRetention(logs).stream().filter(e -> e.getLevel() == Level.WARN).map(ILoggingEvent::getFormattedMessage)
        .toList();
  }
}
