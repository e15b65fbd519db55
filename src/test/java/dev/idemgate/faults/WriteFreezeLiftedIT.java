package dev.idemgate.faults;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.ScratchDatabase;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
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
 * on after the freeze ended, and every pod stayed out of the Service. Then, with such connections
 * left once refused, a payment whose statement met one still got 503 (one per such connection).
 */
class WriteFreezeLiftedIT {
  /** How soon after the freeze is lifted the gateway must be ready and charge again. */
  private static final long BOUND_NANOS = 5_000_000_000L;

  @Test
  @DisplayName("after writes are frozen (default_transaction_read_only) and thawed, readiness is UP within 5 s and "
      + "every payment is charged (201), the first included, though probes and payments every second keep the "
      + "connections opened during the freeze busy and sessions that only read during it wait read-only in the pool; "
      + "each is charged once, with one ledger row")
  void connectionsOpenedReadOnlyAreLeftOnceWritesAreBack() {
    Vertx vertx = Vertx.vertx();
    try (ScratchDatabase db = ScratchDatabase.create(vertx, "freeze");
         TestDb admin = new TestDb(vertx);
         TestDb ledger = new TestDb(vertx, db.url());
         Http http = new Http();
         TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PG_URL", db.url(), "IDEMGATE_STORE_TIMEOUT", "5s"))) {
      Http.Reply first = http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(100, "tok_visa"));
      assertThat(first.status()).isEqualTo(201);
      assertThat(readiness(http, gateway)).isEqualTo("UP");

      // The freeze reaches new sessions only: the gateway's are ended (as their idle close would),
      // and those it opens next, for probes and payments, are read-only.
      admin.query("ALTER DATABASE " + db.name() + " SET default_transaction_read_only = on");
      OffsetDateTime frozenAt = (OffsetDateTime) admin.scalar("SELECT now()");
      admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
          db.name());
      // The first answers after that may come from the ended sessions, the next from new, read-only ones.
      // A payment refused as read-only is sent again once on a new session, itself read-only: still 503.
      for (int second = 0; second < 3; second++) {
        assertThat(readiness(http, gateway)).as("readiness while writes are frozen").isEqualTo("DOWN");
        assertThat(http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(100, "tok_visa")).status())
            .as("a payment while writes are frozen").isEqualTo(503);
        Waits.sleep(1_000);
      }
      // Reads of a payment, several at once, take sessions of the request pool that only read: they
      // stay in it, read-only, after the freeze, until a write is refused on each of them.
      String payment = "/v1/payments/" + first.json().getString("id");
      for (int round = 0; round < 3; round++) {
        List<Future<Http.Reply>> reads = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
          reads.add(http.getAsync(gateway.apiPort(), payment, KEY_A));
        }
        Http.await(Future.all(reads));
        reads.forEach(read -> assertThat(read.result().status()).as("a read while writes are frozen").isEqualTo(200));
      }
      long readOnlyIdle = (Long) admin.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
          + "AND application_name = 'idemgate' AND backend_start > $2 AND state = 'idle'", db.name(), frozenAt);

      admin.query("ALTER DATABASE " + db.name() + " RESET default_transaction_read_only");
      long liftedAt = System.nanoTime();
      List<String> seen = new ArrayList<>();
      Map<String, String> charged = new LinkedHashMap<>(); // idempotency key -> payment id
      long readyAfter = -1;
      // A kubelet probing, and clients paying, every second: no connection is idle long enough to close.
      for (int second = 0; second < 5; second++) {
        String status = readiness(http, gateway);
        String key = Http.newKey();
        Http.Reply paid = http.pay(gateway.apiPort(), KEY_A, key, Http.payment(100, "tok_visa"));
        long since = System.nanoTime() - liftedAt;
        seen.add(String.format("%.1f s: %s %d", since / 1e9, status, paid.status()));
        if (readyAfter < 0 && "UP".equals(status)) {
          readyAfter = since;
        }
        if (paid.status() == 201) {
          charged.put(key, paid.json().getString("id"));
        }
        Waits.sleep(1_000);
      }
      System.out.println("after the freeze was lifted (readiness, payment), " + readOnlyIdle
          + " read-only sessions idle at the RESET: " + seen);
      assertThat(readOnlyIdle).as("sessions opened during the freeze, idle in the pools at the RESET").isGreaterThan(1);
      assertThat(readyAfter).as("readiness UP within 5 s of the freeze lifted, probing every second; seen %s", seen)
          .isBetween(0L, BOUND_NANOS);
      assertThat(charged).as("every payment after the freeze was lifted is charged (201); seen %s", seen).hasSize(5);
      charged.forEach((key, id) -> {
        Http.Reply charges = http.get(gateway.managementPort(), "/admin/simulator/charges?merchant=" + MERCHANT_A
            + "&key=" + URLEncoder.encode(key, StandardCharsets.UTF_8), TestGateway.ADMIN_TOKEN);
        assertThat(charges.json().getJsonArray("charges")).as("charges of %s", key).hasSize(1);
        assertThat(ledger.scalar("SELECT count(*) FROM idemgate.payments WHERE id = $1", id))
            .as("ledger rows of %s", id).isEqualTo(1L);
      });
    } finally {
      Http.await(vertx.close());
    }
  }

  private static String readiness(Http http, TestGateway gateway) {
    return http.get(gateway.managementPort(), "/health/ready", null).json().getString("status");
  }
}
