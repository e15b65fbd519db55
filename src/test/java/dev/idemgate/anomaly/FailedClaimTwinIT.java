package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.ProxiedPostgres;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A payment whose claim fails (PostgreSQL unreachable: 503, nothing claimed or charged) is no payment.
 * As a twin it counts nothing; the client's retry of the same key, once PostgreSQL is back, is the
 * twin, and counts once. As an original it holds no place: the same payment under a new key is no
 * twin of it. PostgreSQL is reached through a fault proxy of the test's own, which is cut; the
 * shared database itself is never touched.
 */
class FailedClaimTwinIT {
  private static final String TWIN_CHECKS = "idemgate_anomaly_checks_total{result=\"twin\"}";

  @ParameterizedTest(name = "{0}")
  @EnumSource(LetThrough.class)
  @DisplayName("a twin answered 503 (its claim failed) counts nothing; the retry of its key that is charged counts "
      + "once, and its replay does not")
  void aTwinCountsOnceItsClaimTakesTheKey(LetThrough twin) {
    try (ProxiedPostgres postgres = ProxiedPostgres.start();
         Http http = new Http();
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_PG_URL", postgres.url(),
             "IDEMGATE_DUPLICATE_PAYLOAD_POLICY", twin.policy,
             "IDEMGATE_STORE_TIMEOUT", "1s",
             "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      String client = "shop-" + UUID.randomUUID();
      Map<String, String> headers = new HashMap<>(twin.headers);
      headers.put("X-Client-Id", client);
      String body = Orders.payment(2900, "tok_visa").encode();
      assertThat(pay(http, gateway, Http.newKey(), body, headers).status()).as("the original").isEqualTo(201);
      String k2 = Http.newKey();

      postgres.proxy().refuse();
      postgres.proxy().cutAll();
      Reply failed = pay(http, gateway, k2, body, headers);
      assertThat(failed.status()).as(failed.body()).isEqualTo(503);
      assertThat(failed.json().getString("code")).isEqualTo("store_unavailable");
      JsonObject afterFailure = AnomalyViews.anomalies(http, gateway);
      assertThat(AnomalyViews.pairsOf(afterFailure, client)).as("a twin whose claim failed is no twin pair").isEmpty();
      assertThat(AnomalyViews.standing(afterFailure, client).getLong("twins")).as("nor a twin of its client").isZero();
      assertThat(AnomalyViews.meter(http, gateway, TWIN_CHECKS)).isZero();

      postgres.proxy().pass();
      Waits.eventually(Duration.ofSeconds(15), () -> pay(http, gateway, k2, body, headers).status() == 201,
          "the retry of the twin's key is charged once PostgreSQL is back");
      Reply replayed = pay(http, gateway, k2, body, headers);
      assertThat(replayed.header("Idempotent-Replayed")).isEqualTo("true");

      JsonObject after = AnomalyViews.anomalies(http, gateway);
      assertThat(AnomalyViews.pairsOf(after, client)).as("the retry that took the key is the twin, counted once")
          .singleElement().satisfies(pair -> {
            assertThat(pair.getString("key_hash"))
                .isEqualTo(PaymentTwins.keyHash(TestGateway.MERCHANT_A, new IdempotencyKey(k2)));
            assertThat(pair.getString("outcome")).isEqualTo(twin.outcome);
          });
      assertThat(AnomalyViews.meter(http, gateway, TWIN_CHECKS)).isEqualTo(1);
      if (twin.outcome.equals("flagged")) {
        assertThat(AnomalyViews.standing(after, client).getLong("twins")).isEqualTo(1);
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"reject", "flag"})
  @DisplayName("an original answered 503 (its claim failed: nothing claimed, nothing charged) is no original: the same "
      + "payment under a new key is charged and is no twin; under reject the first key's retry is then refused as its twin")
  void anOriginalAnswered503IsNoOriginal(String policy) {
    try (ProxiedPostgres postgres = ProxiedPostgres.start();
         Http http = new Http();
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_PG_URL", postgres.url(),
             "IDEMGATE_DUPLICATE_PAYLOAD_POLICY", policy,
             "IDEMGATE_STORE_TIMEOUT", "1s",
             "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      String client = "shop-" + UUID.randomUUID();
      Map<String, String> headers = Map.of("X-Client-Id", client);
      String body = Orders.payment(2950, "tok_visa").encode();
      String k1 = Http.newKey();
      postgres.proxy().refuse();
      postgres.proxy().cutAll();
      Reply failed = pay(http, gateway, k1, body, headers);
      assertThat(failed.status()).as(failed.body()).isEqualTo(503);

      postgres.proxy().pass();
      // Until this was fixed, the 503'd original kept its place: under reject this got 409
      // duplicate_payment_suspected for 66 s, refused as a twin of a payment that does not exist;
      // under flag it was counted as a twin against its client.
      String k2 = Http.newKey();
      Waits.eventually(Duration.ofSeconds(15), () -> pay(http, gateway, k2, body, headers).status() == 201,
          "the same payment under a new key is charged once PostgreSQL is back");
      assertThat(AnomalyViews.pairsOf(AnomalyViews.anomalies(http, gateway), client)).as("no twin of anything").isEmpty();
      assertThat(charges(http, gateway, k2)).isEqualTo(1);
      if (policy.equals("reject")) {
        Reply retry = pay(http, gateway, k1, body, headers);
        assertThat(retry.status()).as(retry.body()).isEqualTo(409);
        assertThat(retry.json().getString("code")).as("the first key is now a twin of the charged one")
            .isEqualTo("duplicate_payment_suspected");
        assertThat(charges(http, gateway, k1)).isZero();
      }
    }
  }

  private static int charges(Http http, TestGateway at, String key) {
    Reply log = http.get(at.managementPort(), "/admin/simulator/charges?merchant=" + TestGateway.MERCHANT_A
        + "&key=" + key, TestGateway.ADMIN_TOKEN);
    assertThat(log.status()).isEqualTo(200);
    return log.json().getJsonArray("charges").size();
  }

  private static Reply pay(Http http, TestGateway to, String key, String body, Map<String, String> headers) {
    return Http.await(http.payAsync(to.apiPort(), TestGateway.KEY_A, key, body, headers));
  }
}
