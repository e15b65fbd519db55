package dev.idemgate.faults;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
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
 * A 202 whose charged outcome PostgreSQL did not take (PaymentService#finish) names a payment id and
 * a Location while the record is still PROCESSING with no ledger row, until the outcome is written
 * again or recovery takes it over. GET of that Location answers the payment as pending: before V9
 * it answered 404 "no payment with this id" for a card that was charged, and a merchant that reads
 * 404 as "no such payment" and pays again under a new key charges the card twice.
 */
class PendingReadBackIT {

  @Test
  @DisplayName("a payment answered 202 because PostgreSQL did not take its charged outcome reads back as pending "
      + "at its Location, never 404, while the outcome is still being written")
  void pendingAnswerReadsBackAsPending() {
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx());
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_SIMULATOR_SLOW_MS", "2000",
             "IDEMGATE_STORE_TIMEOUT", "1s",
             "IDEMGATE_LEASE", "30s",
             "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      String key = Http.newKey();
      String body = Http.payment(4_444, "tok_slow").encode();
      Future<Http.Reply> first = http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of());
      Waits.eventually(Duration.ofSeconds(5), () -> "PROCESSING".equals(db.scalar(
          "SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key)),
          "the claim commits");

      // The record's row is locked while the provider charges (2 s): the completion waits past
      // the store timeout (1 s) and the client is told 202 pending. The lock stands (a long
      // transaction, a vacuum, a migration), so the outcome is not written yet.
      try (TestDb.RecordLock lock = db.lockRecord(MERCHANT_A, key)) {
        Http.Reply answer = Http.await(first);
        assertThat(answer.status()).as(answer.body()).isEqualTo(202);
        assertThat(answer.json().getString("status")).isEqualTo("pending");
        String location = answer.header("Location");
        assertThat(location).isEqualTo("/v1/payments/" + answer.json().getString("id"));

        // The card was charged.
        Http.Reply charges = http.get(gateway.managementPort(), "/admin/simulator/charges?merchant=" + MERCHANT_A + "&key="
            + URLEncoder.encode(key, StandardCharsets.UTF_8), TestGateway.ADMIN_TOKEN);
        assertThat(charges.json().getJsonArray("charges")).hasSize(1);

        Http.Reply read = http.get(gateway.apiPort(), location, KEY_A);
        assertThat(read.status())
            .as("GET of the Location a 202 gave, for a payment the provider charged: " + read.body())
            .isEqualTo(200);
        assertThat(read.json().getString("status")).isEqualTo("pending");
      }
    }
  }
}
