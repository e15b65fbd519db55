package dev.idemgate.faults;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.ScratchDatabase;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * Writes frozen for maintenance ({@code ALTER DATABASE ... SET default_transaction_read_only = on}),
 * then thawed ({@code RESET}): the setting reaches new sessions only, so a pool connection opened
 * during the freeze stays read-only for as long as it lives. Pool connections close only after ~12 s
 * idle (store_timeout 5 s), and a kubelet probing readiness every few seconds, or payments, keep them
 * busy: readiness stayed DOWN and every payment was 503 store_unavailable for as long as traffic went
 * on after the freeze ended, and every pod stayed out of the Service.
 */
class WriteFreezeLiftedIT {
  /** How soon after the freeze is lifted the gateway must be ready and charge again. */
  private static final long BOUND_NANOS = 5_000_000_000L;

  @Test
  @DisplayName("after writes are frozen (default_transaction_read_only) and thawed, readiness is UP and a payment "
      + "is charged within 5 s, though probes and payments every second keep the connections opened during the "
      + "freeze busy")
  void connectionsOpenedReadOnlyAreLeftOnceWritesAreBack() {
    Vertx vertx = Vertx.vertx();
    try (ScratchDatabase db = ScratchDatabase.create(vertx, "freeze");
         TestDb admin = new TestDb(vertx);
         Http http = new Http();
         TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PG_URL", db.url(), "IDEMGATE_STORE_TIMEOUT", "5s"))) {
      assertThat(http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(100, "tok_visa")).status()).isEqualTo(201);
      assertThat(readiness(http, gateway)).isEqualTo("UP");

      // The freeze reaches new sessions only: the gateway's are ended (as their idle close would),
      // and those it opens next, for probes and payments, are read-only.
      admin.query("ALTER DATABASE " + db.name() + " SET default_transaction_read_only = on");
      admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
          db.name());
      // The first answers after that may come from the ended sessions, the next from new, read-only ones.
      for (int second = 0; second < 3; second++) {
        assertThat(readiness(http, gateway)).as("readiness while writes are frozen").isEqualTo("DOWN");
        assertThat(http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(100, "tok_visa")).status())
            .as("a payment while writes are frozen").isEqualTo(503);
        Waits.sleep(1_000);
      }

      admin.query("ALTER DATABASE " + db.name() + " RESET default_transaction_read_only");
      long liftedAt = System.nanoTime();
      List<String> seen = new ArrayList<>();
      long readyAfter = -1;
      long chargedAfter = -1;
      // A kubelet probing, and clients paying, every second: no connection is idle long enough to close.
      while ((readyAfter < 0 || chargedAfter < 0) && System.nanoTime() - liftedAt < 4 * BOUND_NANOS) {
        String status = readiness(http, gateway);
        int paid = http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(100, "tok_visa")).status();
        long since = System.nanoTime() - liftedAt;
        seen.add(String.format("%.1f s: %s %d", since / 1e9, status, paid));
        if (readyAfter < 0 && "UP".equals(status)) {
          readyAfter = since;
        }
        if (chargedAfter < 0 && paid == 201) {
          chargedAfter = since;
        }
        Waits.sleep(1_000);
      }
      System.out.println("after the freeze was lifted (readiness, payment): " + seen);
      assertThat(readyAfter).as("readiness UP within 5 s of the freeze lifted, probing every second; seen %s", seen)
          .isBetween(0L, BOUND_NANOS);
      assertThat(chargedAfter).as("a payment charged (201) within 5 s of the freeze lifted; seen %s", seen)
          .isBetween(0L, BOUND_NANOS);
    } finally {
      Http.await(vertx.close());
    }
  }

  private static String readiness(Http http, TestGateway gateway) {
    return http.get(gateway.managementPort(), "/health/ready", null).json().getString("status");
  }
}
