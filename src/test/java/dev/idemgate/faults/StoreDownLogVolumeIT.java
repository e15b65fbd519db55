package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.payment.PaymentService;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayPostgres;
import dev.idemgate.support.Waits;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** What an outage of PostgreSQL writes to the log: enough to see it, not a line per refused payment. */
class StoreDownLogVolumeIT {

  @Test
  @DisplayName("while PostgreSQL is down every payment gets 503, and the log gets at most one WARN a second about it, "
      + "the next one counting those not logged one by one (before: one WARN per payment)")
  void oneWarningASecondWhileTheStoreIsDown() {
    int payments = 25;
    try (ThrowawayPostgres pg = ThrowawayPostgres.start();
         TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PG_URL", pg.url(), "IDEMGATE_STORE_TIMEOUT", "1s"));
         Http http = new Http();
         CapturedLogs logs = CapturedLogs.of(PaymentService.class)) {
      pg.crash();
      long started = System.nanoTime();
      int refused = 0;
      for (int i = 0; i < payments; i++) {
        Http.Reply reply = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(500 + i, "tok_visa"));
        refused += reply.status() == 503 ? 1 : 0;
        Waits.sleep(100); // the outage spans seconds, so that lines after the first have something to count
      }
      long seconds = (System.nanoTime() - started) / 1_000_000_000L;
      assertThat(refused).as("503 for every payment while PostgreSQL is down").isEqualTo(payments);

      List<String> warnings = logs.events().stream()
          .filter(e -> e.getLevel() == Level.WARN && e.getFormattedMessage().contains("answering 503"))
          .map(ILoggingEvent::getFormattedMessage).toList();
      assertThat(warnings).as("WARN lines about the 503s, in " + seconds + " s").hasSizeBetween(1, (int) seconds + 2);
      assertThat(warnings).as("a later line counts the 503s not logged one by one")
          .anyMatch(line -> line.matches(".*\\(\\d+ more since the last such line.*"));
    }
  }
}
