package dev.idemgate.idempotency;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.KEY_B;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The in-process replay cache in front of Redis, on a gateway with the real Redis and PostgreSQL.
 * (That a pending 202 is not cached is RecoveryIT.pendingIsResolvedFromTheProvider: the same bytes
 * retried after recovery get the final 201.)
 */
class ReplayCacheIT {
  private static TestGateway gateway;
  private static Http http;
  private static TestDb db;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start();
    http = new Http();
    db = new TestDb(http.vertx());
  }

  @AfterAll
  static void stop() {
    db.close();
    http.close();
    gateway.close();
  }

  private static String body(String reference) {
    return "{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"merchant_reference\":\"" + reference + "\"}";
  }

  private static Reply pay(String apiKey, String key, String body) {
    return Http.await(http.payAsync(gateway.apiPort(), apiKey, key, body, Map.of()));
  }

  @Test
  @DisplayName("a replay with the same bytes is answered from memory; the same payment in other bytes goes to Redis and PostgreSQL")
  void sameBytesFromMemory() {
    String key = Http.newKey();
    String reference = "order-" + key;
    Reply first = pay(KEY_A, key, body(reference));
    assertThat(first.status()).isEqualTo(201);

    // Behind the gateway's back (a test-only edit): Redis forgets the key and the stored answer
    // in PostgreSQL changes. Only an answer from the cache can still be the first one.
    Redis redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
    try {
      Http.await(redis.send(Request.cmd(Command.DEL).arg(RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(key)))));
    } finally {
      redis.close();
    }
    db.query("UPDATE idemgate.idempotency_keys SET response_body = $1 WHERE merchant_id = $2 AND idempotency_key = $3",
        "{\"edited\":true}", TestGateway.MERCHANT_A, key);

    Reply cached = pay(KEY_A, key, body(reference));
    assertThat(cached.status()).isEqualTo(201);
    assertThat(cached.body()).isEqualTo(first.body());
    assertThat(cached.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(cached.header("Location")).isEqualTo(first.header("Location"));
    assertThat(cached.header("Idempotency-Key-Expires")).isEqualTo(first.header("Idempotency-Key-Expires"));
    assertThat(cached.header("Idempotency-Key")).isEqualTo(key);

    String reordered = "{ \"merchant_reference\": \"" + reference + "\", \"source\": \"tok_visa\", \"currency\": \"EUR\", \"amount\": 1999 }";
    Reply fromStore = pay(KEY_A, key, reordered);
    assertThat(fromStore.status()).isEqualTo(201);
    assertThat(fromStore.body()).isEqualTo("{\"edited\":true}");
    assertThat(fromStore.header("Idempotent-Replayed")).isEqualTo("true");
  }

  @Test
  @DisplayName("a cached key with another payload still gets 422, and another merchant's same key is its own payment")
  void cacheKeepsTheRules() {
    String key = Http.newKey();
    String reference = "order-" + key;
    Reply first = pay(KEY_A, key, body(reference));
    assertThat(pay(KEY_A, key, body(reference)).body()).isEqualTo(first.body()); // now cached

    Reply other = pay(KEY_A, key, body(reference).replace("1999", "2000"));
    assertThat(other.status()).isEqualTo(422);
    assertThat(other.json().getString("code")).isEqualTo("idempotency_key_reused");

    Reply merchantB = pay(KEY_B, key, body(reference));
    assertThat(merchantB.status()).isEqualTo(201);
    assertThat(merchantB.header("Idempotent-Replayed")).isNull();
    assertThat(merchantB.json().getString("id")).isNotEqualTo(first.json().getString("id"));
  }

  @Test
  @DisplayName("once a cached key expires it is a new payment again")
  void expiredKeyIsNew() {
    try (TestGateway shortLived = TestGateway.start(Map.of("IDEMGATE_KEY_TTL", "2s"))) {
      String key = Http.newKey();
      String body = body("order-" + key);
      Reply first = Http.await(http.payAsync(shortLived.apiPort(), KEY_A, key, body, Map.of()));
      Reply replay = Http.await(http.payAsync(shortLived.apiPort(), KEY_A, key, body, Map.of()));
      assertThat(replay.header("Idempotent-Replayed")).isEqualTo("true");

      Waits.sleep(2_500);
      Reply again = Http.await(http.payAsync(shortLived.apiPort(), KEY_A, key, body, Map.of()));
      assertThat(again.status()).isEqualTo(201);
      assertThat(again.header("Idempotent-Replayed")).isNull();
      assertThat(again.json().getString("id")).isNotEqualTo(first.json().getString("id"));
    }
  }
}
