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

/**
 * A twin whose claim fails (PostgreSQL unreachable: 503, nothing claimed or charged) is no payment,
 * and counts nothing; the client's retry of the same key, once PostgreSQL is back, is the twin, and
 * counts once. PostgreSQL is reached through a fault proxy of the test's own, which is cut; the
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

  private static Reply pay(Http http, TestGateway to, String key, String body, Map<String, String> headers) {
    return Http.await(http.payAsync(to.apiPort(), TestGateway.KEY_A, key, body, headers));
  }
}
