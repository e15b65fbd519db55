package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.FaultProxy;
import dev.idemgate.support.Http;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedis;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A Redis connection that stops answering without being closed (a hung peer, a host gone without a
 * reset: a FaultProxy freezing the open connections while new ones pass) must not keep the gate
 * on it: the gateway leaves it and gets back to Redis on a new connection.
 */
class HungRedisConnectionIT {

  private static String redisKey(String key) {
    return RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(key));
  }

  @Test
  @DisplayName("after its Redis connections hang without closing, the gate is back on Redis within seconds, on new connections; payments never stop")
  void hungConnectionIsLeft() {
    try (ThrowawayRedis redis = ThrowawayRedis.start();
        FaultProxy proxy = FaultProxy.start("127.0.0.1", redis.port());
        Http http = new Http();
        TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REDIS_URL", "redis://127.0.0.1:" + proxy.port(),
            "IDEMGATE_REDIS_TIMEOUT", "200ms"))) {
      for (int i = 0; i < 4; i++) {
        String key = Http.newKey();
        assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, key, Http.payment(500, "tok_visa")).status()).isEqualTo(201);
        assertThat(RespCommand.call(redis.port(), "EXISTS", redisKey(key))).isEqualTo("1");
      }
      long connectionsBefore = proxy.acceptedConnections();

      proxy.freezeOpen();
      long frozenAt = System.nanoTime();

      long deadline = frozenAt + 15_000_000_000L;
      String lastKey = null;
      boolean backOnRedis = false;
      while (!backOnRedis && System.nanoTime() < deadline) {
        lastKey = Http.newKey();
        assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, lastKey, Http.payment(500, "tok_visa")).status())
            .isEqualTo(201);
        backOnRedis = "1".equals(RespCommand.call(redis.port(), "EXISTS", redisKey(lastKey)));
      }
      System.out.printf("gate back on Redis %.1f s after its connections hung (redis_timeout 200ms)%n",
          (System.nanoTime() - frozenAt) / 1e9);
      assertThat(backOnRedis).as("a payment's record reached Redis again after the freeze").isTrue();
      assertThat(proxy.acceptedConnections()).isGreaterThan(connectionsBefore);
    }
  }
}
