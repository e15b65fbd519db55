package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.FaultProxy;
import dev.idemgate.support.Http;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedis;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A Redis connection that stops answering without being closed (a hung peer, a host gone without a
 * reset: a FaultProxy freezing the open connections while new ones pass) must not keep the gateway
 * on it: the gate, the twin check and the completion notifier leave it and get back to Redis on new
 * connections.
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
        TestGateway gateway = InfraFaultFixture.gatewayThrough(proxy)) {
      for (int i = 0; i < 4; i++) {
        String key = Http.newKey();
        assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, key, Http.payment(500, "tok_visa")).status()).isEqualTo(201);
        Waits.eventually(Duration.ofSeconds(2), () -> "1".equals(RespCommand.call(redis.port(), "EXISTS", redisKey(key))),
            "the payment's record in Redis");
      }
      long connectionsBefore = proxy.acceptedConnections();

      proxy.freezeOpen();
      long frozenAt = System.nanoTime();

      assertThat(gateBackOnRedis(http, gateway, redis)).as("a payment's record reached Redis again after the freeze").isTrue();
      System.out.printf("gate back on Redis %.1f s after its connections hung (redis_timeout 200ms)%n",
          (System.nanoTime() - frozenAt) / 1e9);
      assertThat(proxy.acceptedConnections()).isGreaterThan(connectionsBefore);
    }
  }

  @Test
  @DisplayName("under duplicate_payload_policy reject, after the twin check's own connection hangs, twins are refused again within seconds")
  void twinCheckLeavesHungConnection() {
    try (ThrowawayRedis redis = ThrowawayRedis.start();
        FaultProxy proxy = FaultProxy.start("127.0.0.1", redis.port());
        Http http = new Http();
        TestGateway gateway = InfraFaultFixture.gatewayThrough(proxy, "IDEMGATE_API_INSTANCES", "1",
            "IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "reject")) {
      // Tried for a few seconds: each check has 200 ms per Redis exchange, and its first opens its connection.
      assertThat(aTwinRefusedWithin(http, gateway, 1_000, 5)).as("a twin is refused before the freeze").isTrue();

      proxy.freezeOpen();
      long frozenAt = System.nanoTime();

      // While the connections hang, twin checks time out and twins go through (the check is advisory).
      boolean refused = aTwinRefusedWithin(http, gateway, 100_000, 15);
      System.out.printf("twins refused again %.1f s after the connections hung (redis_timeout 200ms)%n",
          (System.nanoTime() - frozenAt) / 1e9);
      assertThat(refused).as("a twin was refused again after the freeze").isTrue();
    }
  }

  @Test
  @DisplayName("after the completion notifier's subscriber connection hangs, a request waiting with Prefer: wait is woken by its twin's completion, not by the end of its wait")
  void notifierLeavesHungSubscriber() {
    try (ThrowawayRedis redis = ThrowawayRedis.start();
        FaultProxy proxy = FaultProxy.start("127.0.0.1", redis.port());
        Http http = new Http();
        TestGateway gateway = InfraFaultFixture.gatewayThrough(proxy, "IDEMGATE_API_INSTANCES", "1", "IDEMGATE_SIMULATOR_SLOW_MS", "3000")) {
      assertThat(waitForSlowTwin(http, gateway)).as("woken before the freeze").isLessThan(WAIT_MS);

      proxy.freezeOpen();
      assertThat(gateBackOnRedis(http, gateway, redis)).as("completions are published through Redis again").isTrue();

      long waitedMs = waitForSlowTwin(http, gateway);
      System.out.printf("a Prefer: wait request after the subscriber hung was answered in %d ms (twin takes 3,000 ms)%n",
          waitedMs);
      assertThat(waitedMs).as("woken by the completion notice, not by the end of the %d ms wait", WAIT_MS)
          .isLessThan(WAIT_MS - 2_000);
    }
  }

  private static final long WAIT_MS = 10_000;

  /** Pays until a payment's record is in Redis again, for at most 15 s; whether it got there. */
  private static boolean gateBackOnRedis(Http http, TestGateway gateway, ThrowawayRedis redis) {
    long deadline = System.nanoTime() + 15_000_000_000L;
    while (System.nanoTime() < deadline) {
      String key = Http.newKey();
      assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, key, Http.payment(500, "tok_visa")).status())
          .isEqualTo(201);
      if ("1".equals(RespCommand.call(redis.port(), "EXISTS", redisKey(key)))) {
        return true;
      }
    }
    return false;
  }

  /**
   * Pays twins ({@link #twinRefused}) of a new amount each time, from {@code firstAmount}, until one is
   * refused or {@code seconds} have passed; whether one was.
   */
  private static boolean aTwinRefusedWithin(Http http, TestGateway gateway, long firstAmount, long seconds) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    for (long amount = firstAmount; System.nanoTime() < deadline; amount++) {
      if (twinRefused(http, gateway, amount)) {
        return true;
      }
    }
    return false;
  }

  /** Pays one body under two keys; whether the second was refused as a twin (it is charged otherwise). */
  private static boolean twinRefused(Http http, TestGateway gateway, long amount) {
    JsonObject body = Http.payment(amount, "tok_visa");
    assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), body).status()).isEqualTo(201);
    Http.Reply twin = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), body);
    assertThat(twin.status()).as(twin.body()).isIn(201, 409);
    return twin.status() == 409;
  }

  /**
   * A slow payment (3,000 ms at the provider: time enough for the claim to be seen before the retry
   * is sent, on a loaded machine too), then its retry with Prefer: wait; how long the retry took to
   * get the replay (at least a few hundred ms: it waited).
   */
  private static long waitForSlowTwin(Http http, TestGateway gateway) {
    String key = Http.newKey();
    String body = Http.payment(700, "tok_slow").encode();
    Future<Http.Reply> slow = http.payAsync(gateway.apiPort(), TestGateway.KEY_A, key, body, Map.of());
    // PostgreSQL holds every claim (Redis may not, while the gate stays off it after a fault).
    try (TestDb db = new TestDb(http.vertx())) {
      Waits.eventually(Duration.ofSeconds(5), () -> "PROCESSING".equals(db.scalar("SELECT state FROM "
          + "idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2", TestGateway.MERCHANT_A, key)),
          "the slow payment is claimed, now at the provider");
    }
    long started = System.nanoTime();
    Http.Reply waited = Http.await(http.payAsync(gateway.apiPort(), TestGateway.KEY_A, key, body,
        Map.of("Prefer", "wait=" + WAIT_MS / 1000)));
    long waitedMs = (System.nanoTime() - started) / 1_000_000;
    assertThat(waited.status()).as(waited.body()).isEqualTo(201);
    assertThat(waitedMs).as("the retry waited for the slow payment").isGreaterThan(300);
    assertThat(waited.body()).isEqualTo(Http.await(slow).body());
    return waitedMs;
  }
}
