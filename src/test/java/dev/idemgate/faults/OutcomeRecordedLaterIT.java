package dev.idemgate.faults;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.payment.PaymentService;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.ProxiedPostgres;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * PostgreSQL lost between the charge and its completion: the client is told "pending", and the
 * gateway writes the provider's answer again as soon as PostgreSQL is back, without waiting for
 * recovery to take the record over at the end of the lease; a completion that did land, only too
 * late for its request, is replayed as soon as it is there.
 */
class OutcomeRecordedLaterIT {
  private static final String LEASE = "30s";

  @Test
  @DisplayName("a charged outcome PostgreSQL did not take (202 pending) is written again once PostgreSQL is back, "
      + "long before the lease ends: retries then replay the 201; one charge, one ledger row")
  void writtenAgainWhenTheStoreIsBack() {
    try (ProxiedPostgres postgres = ProxiedPostgres.start();
         Http http = new Http(); TestDb db = new TestDb(http.vertx());
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_PG_URL", postgres.url(),
             "IDEMGATE_SIMULATOR_SLOW_MS", "1500",
             "IDEMGATE_STORE_TIMEOUT", "1s",
             "IDEMGATE_LEASE", LEASE,
             "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      String key = Http.newKey();
      String body = Http.payment(2_222, "tok_slow").encode();
      Future<Http.Reply> first = http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of());
      // Claimed (committed), now 1.5 s at the provider. Waited for, not slept: on a loaded machine
      // the first claim of a new gateway took over the 500 ms slept here before, and got 503.
      Waits.eventually(Duration.ofSeconds(1), () -> "PROCESSING".equals(state(db, key)), "the claim commits");
      postgres.proxy().refuse();
      postgres.proxy().cutAll();

      Http.Reply answer = Http.await(first);
      assertThat(answer.status()).as(answer.body()).isEqualTo(202);
      assertThat(answer.json().getString("status")).isEqualTo("pending");

      postgres.proxy().pass();
      long afterMs = awaitReplayed201(http, gateway, key, body,
          "without the later write, only recovery would record it, after the " + LEASE + " lease");
      System.out.println("outcome replayed " + afterMs + " ms after PostgreSQL came back");
      assertChargedOnce(http, db, gateway, key);
    }
  }

  @Test
  @DisplayName("a completion that timed out at the gateway but committed in PostgreSQL (202 pending): retries replay "
      + "the 201 within seconds, not 409 \"in flight\" until the lease ends; one charge, one ledger row")
  void completionThatLandedLateIsReplayed() {
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx());
         CapturedLogs logs = CapturedLogs.of(PaymentService.class);
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_SIMULATOR_SLOW_MS", "3000",
             "IDEMGATE_STORE_TIMEOUT", "1s",
             "IDEMGATE_LEASE", LEASE,
             "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      String key = Http.newKey();
      String body = Http.payment(3_333, "tok_slow").encode();
      Future<Http.Reply> first = http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of());
      Waits.eventually(Duration.ofSeconds(5), () -> "PROCESSING".equals(state(db, key)), "the claim commits");

      // The test holds the record's row lock while the provider answers (3 s): the completion
      // waits for it past the store timeout (1 s), so the client is told "pending". Released then,
      // well within the statement's server-side limit (2 s), the completion commits after all, and
      // the gateway's later write of the same outcome is fenced.
      try (TestDb.RecordLock lock = db.lockRecord(MERCHANT_A, key)) {
        Http.Reply answer = Http.await(first);
        assertThat(answer.status()).as(answer.body()).isEqualTo(202);
      }
      Waits.eventually(Duration.ofSeconds(5), () -> "COMPLETED".equals(state(db, key)),
          "the completion that timed out commits once the lock is gone");

      long afterMs = awaitReplayed201(http, gateway, key, body,
          "before the fix the request's claim stayed in Redis and retries got 409 until the " + LEASE + " lease ended");
      System.out.println("committed outcome replayed " + afterMs + " ms after its late commit was seen");
      // The path this test is about: the first write committed, so the later one was fenced (had
      // the lock been held past the statement's limit, the later write would have recorded it).
      assertThat(logs.events()).anyMatch(e -> e.getFormattedMessage().contains("is no longer PROCESSING"));
      assertChargedOnce(http, db, gateway, key);
    }
  }

  /** Retries until one replays the 201; returns how long that took, in ms. */
  private static long awaitReplayed201(Http http, TestGateway gateway, String key, String body, String why) {
    long start = System.nanoTime();
    Waits.eventually(Duration.ofSeconds(10), () -> {
      Http.Reply retry = Http.await(http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of()));
      return retry.status() == 201 && "true".equals(retry.header("Idempotent-Replayed"))
          && "succeeded".equals(retry.json().getString("status"));
    }, "a retry replays the recorded 201 (" + why + ")");
    return (System.nanoTime() - start) / 1_000_000;
  }

  /** One charge at the provider, one ledger row, succeeded. */
  private static void assertChargedOnce(Http http, TestDb db, TestGateway gateway, String key) {
    String providerKey = ProviderKeys.of(MERCHANT_A, key);
    assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE provider_key = $1", providerKey)).isEqualTo(1L);
    assertThat(db.scalar("SELECT status FROM idemgate.payments WHERE provider_key = $1", providerKey))
        .isEqualTo("succeeded");
    Http.Reply log = http.get(gateway.managementPort(), "/admin/simulator/charges?merchant=" + MERCHANT_A + "&key="
        + URLEncoder.encode(key, StandardCharsets.UTF_8), TestGateway.ADMIN_TOKEN);
    assertThat(log.json().getJsonArray("charges")).hasSize(1);
  }

  private static String state(TestDb db, String key) {
    return (String) db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        MERCHANT_A, key);
  }
}
