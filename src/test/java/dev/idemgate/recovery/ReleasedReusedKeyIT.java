package dev.idemgate.recovery;

import static dev.idemgate.support.TestGateway.KEY_B;
import static dev.idemgate.support.TestGateway.MERCHANT_B;
import static dev.idemgate.support.Waits.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.StoreClaim;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.payment.PaymentService;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * After recovery releases a payment the acquirer "never saw", the retry with the same key is sent
 * under the released payment's provider key, so that if the released charge does land after all (a
 * clock ahead, an acquirer that forgets early: README's known limits) the acquirer deduplicates it
 * against the retry. A key's first use always had it (its provider key comes from the key alone); a
 * key used again after it expired derives its provider key from its payment id, and before V8 its
 * retry after a release got a fresh one.
 */
class ReleasedReusedKeyIT {

  @Test
  @DisplayName("a retry after recovery released a payment of a re-used key is sent under the released payment's "
      + "provider key, as for a key's first use, so the acquirer deduplicates a released charge that lands late")
  void retryAfterReleaseKeepsTheProviderKeyOfAReusedKey() {
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx());
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_LEASE", "3s",
             "IDEMGATE_PROVIDER_TIMEOUT", "3s",
             "IDEMGATE_RECOVERY_INTERVAL", "200ms",
             "IDEMGATE_RECOVERY_BACKOFF", "5s,300ms,600ms",
             "IDEMGATE_MERCHANT_KEY_TTL", MERCHANT_B + "=2s"))) {
      String key = Http.newKey();
      JsonObject body = Http.payment(1_818, "tok_visa");

      // The key's first payment completes, and its key expires (2 s).
      Reply first = http.pay(gateway.apiPort(), KEY_B, key, body);
      assertThat(first.status()).isEqualTo(201);
      Waits.sleep(2_200);

      // The key used again: claimed by an instance that then died, a minute ago, before anything
      // came back from the acquirer. Its provider key is derived from its own payment id.
      IdempotencyStore store = new IdempotencyStore(db.pool(), http.vertx().getOrCreateContext(), 2,
          Duration.ofSeconds(5), Duration.ofSeconds(3), "simulator");
      ClaimRequest claim = new ClaimRequest(MERCHANT_B, new IdempotencyKey(key), PaymentService.fingerprint(body),
          PaymentJson.newPaymentId(Instant.now()), body.getLong("amount"), body.getString("currency"),
          body.getString("merchant_reference"), null, null);
      StoreClaim.Claimed abandoned = (StoreClaim.Claimed) Http.await(store.claim(claim));
      db.query("UPDATE idemgate.idempotency_keys SET lease_expires_at = now() - interval '1 minute', "
          + "created_at = now() - interval '1 minute' WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_B, key);

      // The acquirer never saw it and a late charge is past its window: recovery releases it.
      eventually(Duration.ofSeconds(15), () -> db.scalar("SELECT 1 FROM idemgate.released_payments WHERE id = $1",
          abandoned.paymentId()) != null, "recovery releases the abandoned claim");

      // The client's retry is a new payment.
      Reply retry = http.pay(gateway.apiPort(), KEY_B, key, body);
      assertThat(retry.status()).as(retry.body()).isEqualTo(201);
      String retryProviderKey = (String) db.scalar("SELECT provider_key FROM idemgate.payments WHERE id = $1",
          retry.json().getString("id"));
      assertThat(retryProviderKey)
          .as("the retry's provider key must be the released payment's (%s), so that the acquirer deduplicates "
              + "the released charge if it lands after all", abandoned.providerKey())
          .isEqualTo(abandoned.providerKey());
    }
  }
}
