package dev.idemgate.faults;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static dev.idemgate.support.Waits.sleep;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.ProxiedPostgres;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A charge is sent only within the lease counted from the claim's creation, however long the claim
 * then waited in the group queue: recovery and operator verdicts take {@code created_at} + lease +
 * 2 x {@code provider_timeout} as the moment past which no charge of the payment can reach the
 * acquirer, and free its key on the acquirer's "never seen" after it.
 */
class ChargeSendWindowIT {
  @Test
  @DisplayName("a claim that waited in the queue past its send window (lease - 1 s) behind a slow statement is "
      + "answered without a charge, not charged late")
  void claimQueuedPastItsWindowIsNotCharged() {
    try (ProxiedPostgres postgres = ProxiedPostgres.start();
         Http http = new Http();
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_PG_URL", postgres.url(),
             "IDEMGATE_LEASE", "3s", // a send window of 2 s
             "IDEMGATE_STORE_TIMEOUT", "8s", // longer than the queue wait below: the claim is not given up
             "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      // Connections open first: with the latency below, opening one would take long too.
      for (int i = 0; i < 4; i++) {
        assertThat(http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(100 + i, "tok_visa")).status())
            .isEqualTo(201);
      }
      // The claim statement ahead reaches PostgreSQL 5 s late; only one claim statement is at the
      // database at a time, so the next claim waits in the queue for about 4.8 s, well past its window.
      postgres.proxy().latency(5_000);
      Future<Http.Reply> ahead = http.payAsync(gateway.apiPort(), KEY_A, Http.newKey(),
          Http.payment(200, "tok_visa").encode(), Map.of());
      sleep(200);
      String key = Http.newKey();
      Future<Http.Reply> queued = http.payAsync(gateway.apiPort(), KEY_A, key, Http.payment(201, "tok_visa").encode(),
          Map.of());
      sleep(200);
      postgres.proxy().latency(0); // the statements after the one delayed go through at once

      Http.Reply answer = Http.await(queued);
      Http.await(ahead);
      assertThat(answer.status()).as(answer.body()).isEqualTo(502);
      Http.Reply charges = http.get(gateway.managementPort(), "/admin/simulator/charges?merchant=" + MERCHANT_A + "&key="
          + URLEncoder.encode(key, StandardCharsets.UTF_8), TestGateway.ADMIN_TOKEN);
      assertThat(charges.json().getJsonArray("charges")).as("sent past its window").isEmpty();
    }
  }
}
