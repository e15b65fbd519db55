package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.Fingerprint;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
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
 * An optional field sent as {@code null} on a retry is the same payment as the first request that
 * left it out; claims are still stored under the body as sent, so that instances of earlier
 * versions agree with them during a rolling upgrade.
 */
class NullMembersIT {
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

  private static Reply pay(String key, String body) {
    return Http.await(http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of()));
  }

  private static String storedFingerprint(String key) {
    return (String) db.scalar("SELECT fingerprint FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", TestGateway.MERCHANT_A, key);
  }

  @Test
  @DisplayName("a retry that sends as null a field its first request left out is replayed, from Redis and from PostgreSQL; another amount is still 422")
  void retryWithNullsIsReplayed() {
    String key = Http.newKey();
    Reply first = pay(key, "{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\"}");
    Reply fromRedis = pay(key, "{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"description\":null}");
    Http.await(redisDel(key));
    Reply fromPostgres = pay(key,
        "{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"merchant_reference\":null,\"metadata\":null}");

    assertThat(first.status()).isEqualTo(201);
    for (Reply retry : new Reply[] {fromRedis, fromPostgres}) {
      assertThat(retry.status()).isEqualTo(201);
      assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
      assertThat(retry.body()).isEqualTo(first.body());
    }
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);

    Reply otherAmount = pay(key, "{\"amount\":2000,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"description\":null}");
    assertThat(otherAmount.status()).isEqualTo(422);
    assertThat(otherAmount.json().getString("code")).isEqualTo("idempotency_key_reused");
  }

  @Test
  @DisplayName("a claim is stored under the fingerprint of its body as sent, nulls included, as earlier versions compute it")
  void storedUnderTheBodyAsSent() {
    String key = Http.newKey();
    String sent = "{\"amount\":1500,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"description\":null}";
    assertThat(pay(key, sent).status()).isEqualTo(201);
    assertThat(storedFingerprint(key)).isEqualTo(Fingerprint.of("payments.create", new JsonObject(sent)));
  }

  private static io.vertx.core.Future<?> redisDel(String key) {
    Redis redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
    return redis.send(Request.cmd(Command.DEL).arg(RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(key))))
        .eventually(redis::close);
  }

  @Test
  @DisplayName("a body with a null, on a key held for another payload, gets 422 after one look: a second look is only for a key held under its fingerprint without nulls")
  void noSecondLookForAnotherPayload() {
    String key = Http.newKey();
    assertThat(pay(key, "{\"amount\":1000,\"currency\":\"EUR\",\"source\":\"tok_visa\"}").status()).isEqualTo(201);
    double looksBefore = gateLooks();
    Reply other = pay(key, "{\"amount\":1001,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"description\":null}");

    assertThat(other.status()).isEqualTo(422);
    assertThat(gateLooks() - looksBefore).isEqualTo(1);
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);
  }

  /** How many times the Redis gate was asked, from the gateway's own timer. */
  private static double gateLooks() {
    return Scrape.value(http.get(gateway.managementPort(), "/metrics", null).body(),
        "idemgate_gate_latency_seconds_count{step=\"claim\"}").orElseThrow();
  }
}
