package dev.idemgate.faults;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.FaultProxy;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedis;
import dev.idemgate.support.Waits;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A completed answer's SET reaches Redis late (a Redis that stalls: a fork, a slow disk, a network
 * hiccup). Its PX was counted from when it was sent, so the answer lives that much past the key's
 * expiry, while PostgreSQL has freed the key: the old payment must not speak for the key then.
 */
class LateRedisAnswerIT {

  @Test
  @DisplayName("a completed answer that reached Redis late does not outlive its key: past the key's expiry another "
      + "payload with the key is a new payment (201), not 422 idempotency_key_reused")
  void lateAnswerDoesNotOutliveItsKey() {
    try (ThrowawayRedis redis = ThrowawayRedis.start();
        FaultProxy proxy = FaultProxy.start("127.0.0.1", redis.port());
        Http http = new Http();
        TestDb db = new TestDb(http.vertx());
        TestGateway slowRedis = InfraFaultFixture.gatewayThrough(proxy, "IDEMGATE_API_INSTANCES", "1",
            "IDEMGATE_KEY_TTL", "2s");
        TestGateway direct = TestGateway.start(Map.of("IDEMGATE_REDIS_URL", redis.url(), "IDEMGATE_KEY_TTL", "2s",
            "IDEMGATE_API_INSTANCES", "1"))) {
      String key = Http.newKey();
      String redisKey = RedisGate.redisKey(MERCHANT_A, new IdempotencyKey(key));

      // Everything the first gateway sends Redis lands a second late: its claim times out (the payment is
      // decided in PostgreSQL) and its answer's SET, with a PX of the key's whole TTL, lands after it.
      proxy.latency(1_000);
      Reply first = http.pay(slowRedis.apiPort(), KEY_A, key, Http.payment(900, "tok_visa"));
      assertThat(first.status()).as(first.body()).isEqualTo(201);
      proxy.latency(0);
      long expiresAtMs = ((Number) db.scalar("SELECT (extract(epoch FROM greatest(expires_at, frees_at)) * 1000)::bigint "
          + "FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key)).longValue();

      Waits.sleep(Math.max(0, expiresAtMs + 300 - System.currentTimeMillis()));
      String held = RespCommand.call(redis.port(), "GET", redisKey);
      Reply other = http.pay(direct.apiPort(), KEY_A, key, Http.payment(901, "tok_visa"));
      assertThat(other.status())
          .as("300 ms past the key's expiry PostgreSQL holds it as free, so another payload with it is a new payment; "
              + "Redis holds %s; answer: %s", held, other.body())
          .isEqualTo(201);
      assertThat(other.header("Idempotent-Replayed")).isNull();
      assertThat(other.json().getString("id")).isNotEqualTo(first.json().getString("id"));
    }
  }
}
