package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.Fingerprint;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.json.JsonObject;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A processing claim in Redis ({@code P|fingerprint|token}) is written by a request before it has
 * asked PostgreSQL. When Redis has lost a key (eviction, restart, failover), a request with another
 * payload writes one for a key PostgreSQL holds; it must not make the genuine retry hear 422.
 * The claim is written here by hand, as that request's SET NX would have left it.
 */
class TentativeRedisClaimIT {
  private static final String ORIGINAL = "{\"amount\":2500,\"currency\":\"EUR\",\"source\":\"tok_visa\"}";
  /** The same payment in other bytes, so that the in-process replay cache does not answer it. */
  private static final String ORIGINAL_REORDERED = "{\"source\":\"tok_visa\",\"currency\":\"EUR\",\"amount\":2500}";
  private static final String OTHER = "{\"amount\":2600,\"currency\":\"EUR\",\"source\":\"tok_visa\"}";

  private static TestGateway gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start();
    http = new Http();
  }

  @AfterAll
  static void stop() {
    http.close();
    gateway.close();
  }

  private static Reply pay(String key, String body) {
    return Http.await(http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of()));
  }

  /** Replaces whatever Redis holds for the key with another payload's processing claim. */
  private static void otherPayloadClaims(String key) {
    String claim = "P|" + Fingerprint.of("payments.create", new JsonObject(OTHER)) + "|0123456789abcdef";
    Redis redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
    Future<?> set = redis.send(Request.cmd(Command.SET)
            .arg(RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(key))).arg(claim).arg("PX").arg(60_000))
        .eventually(redis::close);
    Http.await(set);
  }

  @Test
  @DisplayName("a retry of a completed payment that meets another payload's claim in Redis is replayed from PostgreSQL, not 422")
  void retryOfACompletedPaymentIsReplayed() {
    String key = Http.newKey();
    Reply first = pay(key, ORIGINAL);
    assertThat(first.status()).isEqualTo(201);
    otherPayloadClaims(key);

    Reply retry = pay(key, ORIGINAL_REORDERED);

    assertThat(retry.status()).as(retry.body()).isEqualTo(201);
    assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(retry.body()).isEqualTo(first.body());
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("another payload's claim in Redis for a key PostgreSQL does not hold refuses nothing by itself: PostgreSQL takes the payment, once")
  void claimPostgresNeverSawRefusesNothing() {
    String key = Http.newKey();
    otherPayloadClaims(key); // e.g. a request whose claim in PostgreSQL has not committed yet

    Reply payment = pay(key, ORIGINAL);
    Reply retry = pay(key, ORIGINAL_REORDERED);
    Reply other = pay(key, OTHER.replace("2600", "2601"));

    assertThat(payment.status()).as(payment.body()).isEqualTo(201);
    assertThat(retry.status()).isEqualTo(201);
    assertThat(retry.body()).isEqualTo(payment.body());
    assertThat(other.status()).as("PostgreSQL holds the key for the first payload").isEqualTo(422);
    assertThat(other.json().getString("code")).isEqualTo("idempotency_key_reused");
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);
  }
}
