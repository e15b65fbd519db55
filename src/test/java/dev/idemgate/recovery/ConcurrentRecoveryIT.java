package dev.idemgate.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** Two instances sweeping the same PostgreSQL at the same moment split the work and never ask about one key twice. */
class ConcurrentRecoveryIT {
  private static final int RECORDS = 60;

  private static double metric(Http http, TestGateway gateway, String line) {
    return http.get(gateway.managementPort(), "/metrics", null).body().lines()
        .filter(l -> l.startsWith(line)).mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }

  @Test
  @DisplayName("two instances recovering at once: every abandoned record handled exactly once, none by both")
  void twoInstancesSplitTheWork() throws Exception {
    String merchant = "recovery_" + UUID.randomUUID().toString().substring(0, 8);
    Map<String, String> fast = Map.of("IDEMGATE_RECOVERY_INTERVAL", "100ms", "IDEMGATE_RECOVERY_BATCH", "7",
        "IDEMGATE_LEASE", "2s", "IDEMGATE_PROVIDER_TIMEOUT", "1s");
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx())) {
      IdempotencyStore store = new IdempotencyStore(db.pool(), http.vertx().getOrCreateContext(), 4,
          Duration.ofSeconds(5), Duration.ofSeconds(2), "simulator");
      for (int i = 0; i < RECORDS; i++) {
        Http.await(store.claim(new ClaimRequest(merchant, new IdempotencyKey("k" + i), "fp", PaymentJson.newPaymentId(Instant.now()),
            100 + i, "EUR", null, null, null)));
      }
      try (TestGateway one = TestGateway.start(fast); TestGateway two = TestGateway.start(fast)) {
        // Both are sweeping before the records expire, so they race for them.
        db.query("UPDATE idemgate.idempotency_keys SET lease_expires_at = now() - interval '1 minute', "
            + "created_at = now() - interval '1 minute' WHERE merchant_id = $1", merchant);
        Instant deadline = Instant.now().plusSeconds(30);
        while (Instant.now().isBefore(deadline)
            && (Long) db.scalar("SELECT count(*) FROM idemgate.idempotency_keys WHERE merchant_id = $1", merchant) > 0) {
          Thread.sleep(100);
        }
        assertThat(db.scalar("SELECT count(*) FROM idemgate.idempotency_keys WHERE merchant_id = $1", merchant)).isEqualTo(0L);
        double releasedByOne = metric(http, one, "idemgate_recovery_actions_total{action=\"released\"");
        double releasedByTwo = metric(http, two, "idemgate_recovery_actions_total{action=\"released\"");
        double fenced = metric(http, one, "idemgate_recovery_actions_total{action=\"fenced\"")
            + metric(http, two, "idemgate_recovery_actions_total{action=\"fenced\"");
        // Other tests' leftovers may be recovered too, so count at least ours, and no double handling.
        assertThat(releasedByOne + releasedByTwo).isGreaterThanOrEqualTo(RECORDS);
        assertThat(releasedByOne).isPositive();
        assertThat(releasedByTwo).isPositive();
        assertThat(fenced).isZero();
      }
    }
  }
}
