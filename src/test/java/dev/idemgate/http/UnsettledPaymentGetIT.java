package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.StoreClaim;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * GET of a payment whose record is still unsettled and has no ledger row (answered 202 while
 * PROCESSING: PostgreSQL did not take its outcome, or recovery took it over first).
 */
class UnsettledPaymentGetIT {

  /** A claim of MERCHANT_A, just made, labelled with {@code providerId} as that gateway labels its own; its payment id. */
  private static String claim(Http http, TestDb db, String key, String providerId) {
    IdempotencyStore store = new IdempotencyStore(db.pool(), http.vertx().getOrCreateContext(), 2, Duration.ofSeconds(5),
        Duration.ofSeconds(30), providerId);
    ClaimRequest claim = new ClaimRequest(MERCHANT_A, new IdempotencyKey(key), "fp", PaymentJson.newPaymentId(Instant.now()),
        1601, "EUR", "order-get", null, null);
    assertThat(Http.await(store.claim(claim))).isInstanceOf(StoreClaim.Claimed.class);
    return claim.paymentId();
  }

  @Test
  @DisplayName("an unsettled payment without a ledger row names its provider as its 202 did (the ledger's name), not "
      + "the claim's internal label, which holds the acquirer's URL when no provider_name is set")
  void unsettledPaymentNamesItsProviderAsItsAnswerDid() throws Exception {
    // Below the ephemeral range (TestGateway.freePort): a port the kernel just handed out and took back
    // can be handed to another socket, or to the gateway's own connect to it (a self-connection).
    int closedPort = TestGateway.freePort();
    String url = "http://127.0.0.1:" + closedPort;
    String named = Http.newKey();
    String unnamed = Http.newKey();
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx());
        TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PROVIDER", "http", "IDEMGATE_PROVIDER_URL", url,
            "IDEMGATE_PROVIDER_NAME", "acme-get", "IDEMGATE_RECOVERY_INTERVAL", "1h"))) {
      try {
        String namedId = claim(http, db, named, gateway.config().providerId());
        // Claimed before provider_name was set: labelled with the URL, its 202 said "http".
        String unnamedId = claim(http, db, unnamed, "http " + url);

        Reply byName = http.get(gateway.apiPort(), "/v1/payments/" + namedId, KEY_A);
        assertThat(byName.status()).as(byName.body()).isEqualTo(200);
        JsonObject payment = byName.json();
        assertThat(payment.getString("status")).isEqualTo("pending");
        assertThat(payment.getString("provider")).isEqualTo(gateway.config().ledgerProvider()).isEqualTo("acme-get");

        Reply byUrl = http.get(gateway.apiPort(), "/v1/payments/" + unnamedId, KEY_A);
        assertThat(byUrl.status()).as(byUrl.body()).isEqualTo(200);
        assertThat(byUrl.json().getString("provider")).isEqualTo("http");
        assertThat(byUrl.body()).doesNotContain("127.0.0.1");
      } finally {
        db.query("DELETE FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = ANY($2)", MERCHANT_A,
            new String[] {named, unnamed});
      }
    }
  }
}
