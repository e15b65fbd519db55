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
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A claim that PostgreSQL commits after the request stopped waiting for it: the request answers
 * 503 and charges nothing, and the gateway then deletes that claim, so the client's retry goes
 * through instead of getting 409 until recovery frees the key after the lease.
 */
class UnansweredClaimIT {
  private static final String LEASE = "30s";

  @Test
  @DisplayName("a claim committed after its 503 (PostgreSQL slower than store_timeout) is released soon after, "
      + "long before the lease ends: the retry is charged once and gets 201")
  void lateClaimIsReleased() {
    try (ProxiedPostgres postgres = ProxiedPostgres.start();
         Http http = new Http(); TestDb db = new TestDb(http.vertx());
         CapturedLogs log = CapturedLogs.of(PaymentService.class);
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_PG_URL", postgres.url(),
             "IDEMGATE_STORE_TIMEOUT", "1s",
             "IDEMGATE_LEASE", LEASE,
             "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      String key = Http.newKey();
      String body = Http.payment(3_333, "tok_visa").encode();
      String providerKey = ProviderKeys.of(MERCHANT_A, key);

      // Connections open first: with the latency below, opening one would outlast the deadline.
      for (int i = 0; i < 4; i++) {
        assertThat(http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(100 + i, "tok_visa")).status())
            .isEqualTo(201);
      }
      // Each way 700 ms: the claim reaches PostgreSQL and commits, its answer comes back after the 1 s deadline.
      postgres.proxy().latency(700);
      Http.Reply first = Http.await(http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of()));
      postgres.proxy().latency(0);
      assertThat(first.status()).as(first.body()).isEqualTo(503);

      long answered = System.nanoTime();
      Waits.eventually(Duration.ofSeconds(12), () -> {
        Http.Reply retry = Http.await(http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of()));
        return retry.status() == 201;
      }, "the retry is charged (without the release the key stays held until recovery, after the " + LEASE + " lease)");
      System.out.println("retry charged " + (System.nanoTime() - answered) / 1_000_000 + " ms after the 503");
      assertThat(log.events()).as("the claim had committed after its 503 (else this test proves nothing)")
          .anyMatch(e -> e.getFormattedMessage().contains("its claim committed after the request had answered 503"));

      assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE provider_key = $1", providerKey)).isEqualTo(1L);
      Http.Reply charges = http.get(gateway.managementPort(), "/admin/simulator/charges?merchant=" + MERCHANT_A + "&key="
          + URLEncoder.encode(key, StandardCharsets.UTF_8), TestGateway.ADMIN_TOKEN);
      assertThat(charges.json().getJsonArray("charges")).hasSize(1);
    }
  }
}
