package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.idemgate.Idemgate;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.ResettingListener;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedis;
import dev.idemgate.support.Waits;
import ch.qos.logback.classic.Level;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * {@code redis_at_start}: whether a Redis that cannot be reached at start-up stops it (required, the
 * default) or only degrades it (optional), and that a Redis answering with a refusal stops it either way.
 */
class RedisAtStartIT {

  /** A throwaway Redis killed at once: its port is free, and it can be started again on it. */
  private static ThrowawayRedis down() {
    ThrowawayRedis redis = ThrowawayRedis.start();
    redis.kill();
    Waits.eventually(Duration.ofSeconds(5), () -> redis.ping() == null, "the killed Redis stops answering");
    return redis;
  }

  private static boolean inRedis(ThrowawayRedis redis, String key) {
    return "1".equals(RespCommand.call(redis.port(), "EXISTS", RedisGate.redisKey(TestGateway.MERCHANT_A,
        IdempotencyKey.parse(key).orElseThrow())));
  }

  @Test
  @DisplayName("optional, Redis down at start: the gateway starts DEGRADED, answers payments, and takes Redis up once it answers")
  void optionalStartsDegradedAndTakesRedisUp() {
    try (ThrowawayRedis redis = down(); Http http = new Http()) {
      try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REDIS_URL", redis.url(),
          "IDEMGATE_REDIS_AT_START", "optional"))) {
        String during = Http.newKey();
        JsonObject payment = Http.payment(1200, "tok_visa");
        Http.Reply paid = http.pay(gateway.apiPort(), TestGateway.KEY_A, during, payment);
        assertThat(paid.status()).as(paid.body()).isEqualTo(201);
        Http.Reply replay = http.pay(gateway.apiPort(), TestGateway.KEY_A, during, payment);
        assertThat(replay.status()).as("replayed from PostgreSQL").isEqualTo(201);
        assertThat(replay.json().getString("id")).isEqualTo(paid.json().getString("id"));
        Http.Reply ready = http.get(gateway.managementPort(), "/health/ready", null);
        assertThat(ready.status()).isEqualTo(200);
        assertThat(ready.json().getString("status")).isEqualTo("DEGRADED");

        redis.restartEmpty();
        Waits.eventually(Duration.ofSeconds(15), () -> {
          String key = Http.newKey();
          Http.Reply after = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, Http.payment(1300, "tok_visa"));
          return after.status() == 201 && waitFor(() -> inRedis(redis, key), Duration.ofSeconds(2));
        }, "a payment's key is in Redis again");
        assertThat(http.get(gateway.managementPort(), "/health/ready", null).json().getString("status")).isEqualTo("UP");
      }
    }
  }

  private static boolean waitFor(java.util.function.BooleanSupplier condition, Duration limit) {
    long deadline = System.nanoTime() + limit.toNanos();
    while (System.nanoTime() < deadline) {
      if (condition.getAsBoolean()) {
        return true;
      }
      Waits.sleep(50);
    }
    return false;
  }

  @Test
  @DisplayName("required (the default), Redis down at start: start-up fails with one line naming Redis")
  void requiredRefusesToStart() {
    try (ThrowawayRedis redis = down()) {
      Idemgate.StartupFailure failure = catchThrowableOfType(Idemgate.StartupFailure.class,
          () -> TestGateway.start(Map.of("IDEMGATE_REDIS_URL", redis.url())).close());
      assertThat(failure).isNotNull();
      assertThat(failure.getMessage()).doesNotContain("\n")
          .startsWith("Redis at " + redis.url() + " cannot be reached: ").contains("Connection refused");
    }
  }

  @Test
  @DisplayName("a connection reset at start-up (a sidecar or load balancer with no Redis behind it): optional starts DEGRADED with a WARN, required stops")
  void connectionResetIsNotARefusal() throws IOException {
    try (ResettingListener reset = new ResettingListener(); Http http = new Http()) {
      String url = "redis://127.0.0.1:" + reset.port();
      try (CapturedLogs logs = CapturedLogs.of(Idemgate.class);
          TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REDIS_URL", url, "IDEMGATE_REDIS_AT_START", "optional"))) {
        assertThat(logs.events()).anySatisfy(event -> {
          assertThat(event.getLevel()).isEqualTo(Level.WARN);
          assertThat(event.getFormattedMessage()).startsWith("Redis at " + url + " cannot be reached: ")
              .contains("Connection reset", "starting DEGRADED (redis_at_start: optional)");
        });
        Http.Reply ready = http.get(gateway.managementPort(), "/health/ready", null);
        assertThat(ready.json().getString("status")).isEqualTo("DEGRADED");
        Http.Reply paid = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(1200, "tok_visa"));
        assertThat(paid.status()).as(paid.body()).isEqualTo(201);
      }
      Idemgate.StartupFailure failure = catchThrowableOfType(Idemgate.StartupFailure.class,
          () -> TestGateway.start(Map.of("IDEMGATE_REDIS_URL", url)).close());
      assertThat(failure).as("required started on a reset").isNotNull();
      assertThat(failure.getMessage()).doesNotContain("\n").startsWith("Redis at " + url + " cannot be reached: ")
          .contains("Connection reset");
    }
  }

  @Test
  @DisplayName("a password holding a comma is taken whole: start-up reaches a Redis asking for it, and payments go"
      + " through it")
  void passwordWithAComma() {
    try (ThrowawayRedis redis = ThrowawayRedis.startWithPassword("pa,ss");
         Http http = new Http();
         CapturedLogs gateLog = CapturedLogs.of(RedisGate.class);
         TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REDIS_URL", "redis://:pa,ss@127.0.0.1:" + redis.port()))) {
      assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(100, "tok_visa")).status())
          .isEqualTo(201);
      assertThat(gateLog.events().stream().filter(e -> e.getLevel() == Level.WARN).map(e -> e.getFormattedMessage()))
          .as("gate calls that failed").isEmpty();
    }
  }

  @Test
  @DisplayName("optional, a Redis refusing the password (or asking for one): start-up still fails with its answer")
  void optionalStillRefusesAWrongPassword() {
    try (ThrowawayRedis redis = ThrowawayRedis.startWithPassword("the-right-password")) {
      String wrong = "redis://:not-the-password@127.0.0.1:" + redis.port();
      Idemgate.StartupFailure failure = catchThrowableOfType(Idemgate.StartupFailure.class,
          () -> TestGateway.start(Map.of("IDEMGATE_REDIS_URL", wrong, "IDEMGATE_REDIS_AT_START", "optional")).close());
      assertThat(failure).as("started with a wrong password").isNotNull();
      assertThat(failure.getMessage()).doesNotContain("\n", "not-the-password")
          .startsWith("Redis at redis://:***@127.0.0.1:" + redis.port() + " cannot be reached: ").contains("WRONGPASS");
      failure = catchThrowableOfType(Idemgate.StartupFailure.class,
          () -> TestGateway.start(Map.of("IDEMGATE_REDIS_URL", redis.url(), "IDEMGATE_REDIS_AT_START", "optional")).close());
      assertThat(failure).as("started with no password").isNotNull();
      assertThat(failure.getMessage()).doesNotContain("\n").contains("NOAUTH");
    }
  }
}
