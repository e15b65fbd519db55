package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.FaultProxy;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedis;
import dev.idemgate.support.Waits;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The gate's claim (SET NX) may reach Redis and be applied after the gateway gave up waiting for
 * its reply. Such a claim belongs to no request: it must not hold the key for the lease.
 */
class LateRedisClaimIT {

  @Test
  @DisplayName("a claim applied after its reply timed out does not hold the key: the original payload's retry is replayed, not 422")
  void lateClaimIsDeleted() {
    try (ThrowawayRedis redis = ThrowawayRedis.start();
        FaultProxy proxy = FaultProxy.start("127.0.0.1", redis.port());
        Http http = new Http();
        TestGateway gateway = InfraFaultFixture.gatewayThrough(proxy, "IDEMGATE_API_INSTANCES", "1")) {
      String key = Http.newKey();
      String redisKey = RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(key));
      JsonObject original = Http.payment(700, "tok_visa");
      Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, original);
      assertThat(first.status()).isEqualTo(201);
      RespCommand.call(redis.port(), "DEL", redisKey); // Redis lost the record; PostgreSQL has it

      // Another payload under the key, while Redis answers later than redis_timeout: PostgreSQL
      // refuses it (422), and its SET NX lands in Redis after the gateway stopped waiting.
      proxy.latency(300);
      Reply other = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, Http.payment(701, "tok_visa"));
      assertThat(other.status()).isEqualTo(422);
      proxy.latency(0);
      Waits.sleep(1_500); // everything delayed has reached Redis

      assertThat(RespCommand.call(redis.port(), "EXISTS", redisKey)).as("no claim left in Redis").isEqualTo("0");
      Reply retry = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, original);
      assertThat(retry.status()).as(retry.body()).isEqualTo(201);
      assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
      assertThat(retry.body()).isEqualTo(first.body());
    }
  }
}
