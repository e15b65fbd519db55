package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.json.JsonObject;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A retry of a key PostgreSQL holds reaches the twin check whenever Redis cannot answer for the key
 * (it lost it, or it only points to PostgreSQL for a pending payment). It is a healthy client's
 * retry, never a twin, whatever the check said of its payload: only the claim tells a new key from a
 * held one. The refused case under policy reject is in {@link DuplicateRejectIT}; these are the
 * twins that go on to the claim.
 */
class HeldKeyRetryIT {
  private static Http http;
  private static Redis redis;

  @BeforeAll
  static void start() {
    http = new Http();
    redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
  }

  @AfterAll
  static void stop() {
    Http.await(redis.close());
    http.close();
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(LetThrough.class)
  @DisplayName("the retry of a paid key is replayed and counted as a retry, not as a twin against its client, when "
      + "Redis lost the key and a later payment of the same payload holds the twin slot; a twin of that one still "
      + "counts, by the time its answer is sent")
  void retryOfAHeldKeyIsNoTwin(LetThrough twin) {
    try (TestGateway shortWindow = TestGateway.start(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", twin.policy,
        "IDEMGATE_DUPLICATE_WINDOW", "5s"))) {
      String client = "shop-" + UUID.randomUUID();
      Map<String, String> headers = new HashMap<>(twin.headers);
      headers.put("X-Client-Id", client);
      JsonObject body = Orders.payment(2800, "tok_visa");
      String k1 = Http.newKey();
      Reply first = pay(shortWindow, k1, body.encode(), headers);
      assertThat(first.status()).isEqualTo(201);
      // Five seconds: the second payment's slot must still stand when the retry comes, a dozen requests
      // later. With two, that left 1.5 s to spare, which a loaded machine can use up: the slot
      // could expire first, and the retry then counts as a new payment.
      Waits.sleep(5_300);
      assertThat(pay(shortWindow, Http.newKey(), body.encode(), headers).status())
          .as("past the window the same payload is a new payment, the slot's new original").isEqualTo(201);
      String k3 = Http.newKey();
      assertThat(pay(shortWindow, k3, body.encode(), headers).status()).as("a twin of it, let through").isEqualTo(201);
      JsonObject before = AnomalyViews.anomalies(http, shortWindow);
      assertThat(AnomalyViews.pairsOf(before, client)).as("the twin, counted before its client heard back").singleElement()
          .satisfies(pair -> {
            assertThat(pair.getString("key_hash")).isEqualTo(PaymentTwins.keyHash(TestGateway.MERCHANT_A, new IdempotencyKey(k3)));
            assertThat(pair.getString("outcome")).isEqualTo(twin.outcome);
          });
      double twinChecks = checks(shortWindow, "twin");
      double sameKeyChecks = checks(shortWindow, "same_key");
      // Redis loses k1 (a restart, an eviction): only PostgreSQL still knows it, so its retry passes
      // the gate and is checked, a twin of the slot's new original as far as the payload goes.
      replayedAfterRedisLostIt(shortWindow, k1, body, headers, first);
      assertThat(charges(shortWindow, k1)).isEqualTo(1);
      JsonObject after = AnomalyViews.anomalies(http, shortWindow);
      assertThat(AnomalyViews.pairsOf(after, client)).as("the retry is no twin pair").singleElement()
          .satisfies(pair -> assertThat(pair.getString("key_hash"))
              .isEqualTo(PaymentTwins.keyHash(TestGateway.MERCHANT_A, new IdempotencyKey(k3))));
      assertThat(AnomalyViews.standing(after, client).getLong("payments")).as("the retry is no new payment")
          .isEqualTo(AnomalyViews.standing(before, client).getLong("payments"));
      assertThat(AnomalyViews.standing(after, client).getLong("twins")).as("nor a twin of its client")
          .isEqualTo(AnomalyViews.standing(before, client).getLong("twins"));
      assertThat(checks(shortWindow, "twin")).isEqualTo(twinChecks);
      assertThat(checks(shortWindow, "same_key")).as("counted as a retry").isEqualTo(sameKeyChecks + 1);
    }
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"flag", "reject"})
  @DisplayName("the retry of a paid key is no new payment of its client either, when Redis lost the key and its "
      + "payload's window has run out, so that the check finds no payment of that payload at all")
  void retryOfAHeldKeyPastTheWindowIsNoNewPayment(String policy) {
    try (TestGateway shortWindow = TestGateway.start(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", policy,
        "IDEMGATE_DUPLICATE_WINDOW", "2s"))) {
      String client = "shop-" + UUID.randomUUID();
      Map<String, String> headers = Map.of("X-Client-Id", client);
      JsonObject body = Orders.payment(2900, "tok_visa");
      String key = Http.newKey();
      Reply first = pay(shortWindow, key, body.encode(), headers);
      assertThat(first.status()).isEqualTo(201);
      Waits.sleep(2_500); // past the window: the payload's anchor is gone
      JsonObject before = AnomalyViews.anomalies(http, shortWindow);
      double firsts = checks(shortWindow, "first");
      double sameKeyChecks = checks(shortWindow, "same_key");
      replayedAfterRedisLostIt(shortWindow, key, body, headers, first);
      JsonObject after = AnomalyViews.anomalies(http, shortWindow);
      assertThat(AnomalyViews.standing(after, client).getLong("payments")).as("the retry is no new payment")
          .isEqualTo(AnomalyViews.standing(before, client).getLong("payments"));
      assertThat(checks(shortWindow, "first")).as("nor the first of its payload").isEqualTo(firsts);
      assertThat(checks(shortWindow, "same_key")).as("counted as a retry").isEqualTo(sameKeyChecks + 1);
    }
  }

  /**
   * Redis loses the key (a restart, an eviction), and the payment's retry, its body reordered, is
   * replayed from PostgreSQL: the first request's answer again.
   */
  private static void replayedAfterRedisLostIt(TestGateway to, String key, JsonObject body, Map<String, String> headers,
      Reply first) {
    Http.await(redis.send(Request.cmd(Command.DEL).arg(RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(key)))));
    Reply retry = pay(to, key, reordered(body).encode(), headers);
    assertThat(retry.status()).isEqualTo(201);
    assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(retry.json().getString("id")).isEqualTo(first.json().getString("id"));
  }

  private static double checks(TestGateway at, String result) {
    return AnomalyViews.meter(http, at, "idemgate_anomaly_checks_total{result=\"" + result + "\"}");
  }

  private static Reply pay(TestGateway to, String key, String body, Map<String, String> headers) {
    return Http.await(http.payAsync(to.apiPort(), TestGateway.KEY_A, key, body, headers));
  }

  /**
   * The same payment with its fields in reverse order: the same fingerprint, but another body, so
   * that the API verticle's replay cache of recent bodies does not answer it before the gate.
   */
  private static JsonObject reordered(JsonObject body) {
    JsonObject reordered = new JsonObject();
    List<String> fields = new ArrayList<>(body.fieldNames());
    Collections.reverse(fields);
    fields.forEach(field -> reordered.put(field, body.getValue(field)));
    return reordered;
  }

  private static int charges(TestGateway at, String key) {
    Reply log = http.get(at.managementPort(), "/admin/simulator/charges?merchant=" + TestGateway.MERCHANT_A
        + "&key=" + key, TestGateway.ADMIN_TOKEN);
    assertThat(log.status()).isEqualTo(200);
    return log.json().getJsonArray("charges").size();
  }
}
