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
 * An optional field sent as {@code null} and one left out are one payment to the fingerprint, as
 * they are to validation; payments stored under the older fingerprint (nulls included) still match.
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

  @Test
  @DisplayName("a retry that leaves out a field the first try sent as null, or sends as null one it left out, is replayed")
  void nullAndAbsentAreOnePayment() {
    String key = Http.newKey();
    Reply first = pay(key, "{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"description\":null}");
    Reply without = pay(key, "{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\"}");
    Reply otherNulls = pay(key,
        "{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"merchant_reference\":null,\"metadata\":null}");

    assertThat(first.status()).isEqualTo(201);
    for (Reply retry : new Reply[] {without, otherNulls}) {
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
  @DisplayName("a payment stored under the fingerprint of its body with nulls is replayed to that body, from Redis and from PostgreSQL")
  void storedUnderTheFingerprintWithNulls() {
    String key = Http.newKey();
    String sent = "{\"amount\":1500,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"description\":null}";
    Reply first = pay(key, sent);
    assertThat(first.status()).isEqualTo(201);
    String stored = (String) db.scalar("SELECT fingerprint FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", TestGateway.MERCHANT_A, key);
    JsonObject meant = new JsonObject(sent);
    meant.remove("description");
    assertThat(stored).isEqualTo(Fingerprint.of("payments.create", meant));

    // Behind the gateway's back: the record as the gateway stored it before nulls were left out.
    String withNulls = Fingerprint.of("payments.create", new JsonObject(sent));
    db.query("UPDATE idemgate.idempotency_keys SET fingerprint = $1 WHERE merchant_id = $2 AND idempotency_key = $3",
        withNulls, TestGateway.MERCHANT_A, key);
    String redisKey = RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(key));
    Redis redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
    try {
      String value = Http.await(redis.send(Request.cmd(Command.GET).arg(redisKey))).toString();
      assertThat(value).startsWith("C|" + stored + "|");
      Http.await(redis.send(Request.cmd(Command.SET).arg(redisKey).arg(value.replace(stored, withNulls)).arg("KEEPTTL")));

      // Other spacing each time, so that the in-process replay cache (keyed by the bytes) has no answer.
      Reply fromRedis = pay(key, sent.replace(",", ", "));
      Http.await(redis.send(Request.cmd(Command.DEL).arg(redisKey)));
      Reply fromPostgres = pay(key, sent.replace(":", ": "));

      for (Reply retry : new Reply[] {fromRedis, fromPostgres}) {
        assertThat(retry.status()).isEqualTo(201);
        assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
        assertThat(retry.body()).isEqualTo(first.body());
      }
    } finally {
      redis.close();
    }
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);
  }
  @Test
  @DisplayName("a body with a null, on a key held for another payload, gets 422 after one look: a second look is only for a key held under its fingerprint with nulls")
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
