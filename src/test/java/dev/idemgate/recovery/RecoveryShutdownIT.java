package dev.idemgate.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.ScratchDatabase;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.Vertx;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** Stopping recovery in the middle of its passes: a clean stop is not a fault. */
class RecoveryShutdownIT {

  private static Http http;
  private static ScratchDatabase scratch;
  private static String url;

  @BeforeAll
  static void ownDatabase() {
    http = new Http();
    scratch = ScratchDatabase.create(http.vertx(), "idemgate_recstop");
    url = scratch.url();
  }

  @AfterAll
  static void dropDatabase() {
    scratch.close();
    http.close();
  }

  @Test
  @DisplayName("a stop while recovery passes run (their pool closing under them) logs no WARN, and each stop did cut a pass short")
  void stopInTheMiddleOfAPassLogsNoWarning() throws Exception {
    // Passes every 10 ms, each purging at least one batch of 2,000 of a large backlog of expired
    // keys: one is nearly always under way when the verticle stops.
    try (TestDb db = new TestDb(http.vertx(), url)) {
      db.query("""
          INSERT INTO idemgate.idempotency_keys (merchant_id, idempotency_key, fingerprint, state, epoch, generation,
            payment_id, provider_key, lease_expires_at, amount, currency, expires_at, next_inquiry_at, created_at,
            provider_id)
          SELECT 'm', 'k-' || g, 'f', 'COMPLETED', 1, 1, 'pay_' || g, 'pk_' || g, now(), 100, 'EUR',
            now() - interval '1 hour', now(), now(), 'simulator' FROM generate_series(1, 300000) g""");
    }
    GatewayConfig config = TestGateway.config(Map.of("IDEMGATE_PG_URL", url, "IDEMGATE_RECOVERY_INTERVAL", "10ms",
        "IDEMGATE_RETENTION_BATCH", "2000"));
    Logger logger = (Logger) LoggerFactory.getLogger(RecoveryVerticle.class);
    Level level = logger.getLevel();
    logger.setLevel(Level.DEBUG);
    try (CapturedLogs logs = CapturedLogs.of(RecoveryVerticle.class)) {
      for (int round = 0; round < 5; round++) {
        Vertx vertx = Vertx.vertx();
        try {
          Http.await(vertx.deployVerticle(new RecoveryVerticle(config, new SimpleMeterRegistry())));
          Thread.sleep(300);
          Http.await(vertx.close());
        } finally {
          vertx.close();
        }
      }
      List<ILoggingEvent> events = logs.events();
      assertThat(events).filteredOn(e -> e.getLevel().isGreaterOrEqual(Level.WARN))
          .extracting(ILoggingEvent::getFormattedMessage).isEmpty();
      assertThat(events).extracting(ILoggingEvent::getFormattedMessage)
          .as("the stops did cut passes short (else this test shows nothing)")
          .anyMatch(m -> m.startsWith("recovery pass cut short by the stop"));
    } finally {
      logger.setLevel(level);
    }
  }
}
