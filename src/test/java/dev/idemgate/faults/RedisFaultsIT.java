package dev.idemgate.faults;

import static dev.idemgate.support.Waits.sleep;
import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.AcquirerProcess;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.ClientHistory;
import dev.idemgate.support.ExactlyOnceChecker;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedis;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** Redis is the fast gate, never the truth: losing it or freezing it must cost speed, not correctness. */
class RedisFaultsIT {

  @Test
  @DisplayName("Redis killed mid-load and restarted empty: payments go on through PostgreSQL, readiness says DEGRADED, and every key is charged at most once")
  void redisKilledAndRestartedEmpty() throws Exception {
    Random random = InfraFaultFixture.random();
    try (AcquirerProcess acquirer = AcquirerProcess.start(false, 5, Map.of());
         ThrowawayRedis redis = ThrowawayRedis.start();
         Http http = new Http()) {
      Map<String, String> env = InfraFaultFixture.gatewayEnv(acquirer);
      env.put("IDEMGATE_REDIS_URL", redis.url());
      try (TestGateway gateway = TestGateway.start(env)) {
        ClientHistory history = new ClientHistory();
        Workload workload = InfraFaultFixture.workload(http, history, gateway);
        AtomicReference<Http.Reply> readinessDuringOutage = new AtomicReference<>();
        AtomicReference<Http.Reply> paidDuringOutage = new AtomicReference<>();
        Thread faults = InfraFaultFixture.after(1_500, () -> {
          redis.kill();
          sleep(800);
          readinessDuringOutage.set(http.get(gateway.managementPort(), "/health/ready", null));
          paidDuringOutage.set(history.pay(http, gateway.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A,
              Http.newKey(), Http.payment(4321, "tok_visa")));
          sleep(1_200);
          redis.restartEmpty();
        });
        workload.run(Duration.ofSeconds(6), 16, 150, 0.05, random);
        faults.join();
        workload.settle(Duration.ofSeconds(30));

        assertThat(paidDuringOutage.get().status()).isEqualTo(201);
        assertThat(readinessDuringOutage.get().status()).isEqualTo(200);
        assertThat(readinessDuringOutage.get().json().getString("status")).isEqualTo("DEGRADED");
        assertThat(http.get(gateway.managementPort(), "/health/ready", null).json().getString("status")).isEqualTo("UP");
        ExactlyOnceChecker.Report report = InfraFaultFixture.check(history, acquirer, TestGateway.pgUrl());
        assertThat(report.ok()).isPositive();
        report.assertValid();
      }
    }
  }

  @Test
  @DisplayName("Redis frozen (SIGSTOP) mid-load: requests go on through PostgreSQL after the gate times out, and nothing is charged twice")
  void redisFrozen() throws Exception {
    Random random = InfraFaultFixture.random();
    try (AcquirerProcess acquirer = AcquirerProcess.start(false, 5, Map.of());
         ThrowawayRedis redis = ThrowawayRedis.start();
         Http http = new Http()) {
      Map<String, String> env = InfraFaultFixture.gatewayEnv(acquirer);
      env.put("IDEMGATE_REDIS_URL", redis.url());
      try (TestGateway gateway = TestGateway.start(env)) {
        ClientHistory history = new ClientHistory();
        Workload workload = InfraFaultFixture.workload(http, history, gateway);
        AtomicReference<Http.Reply> paidWhileFrozen = new AtomicReference<>();
        Thread faults = InfraFaultFixture.after(1_500, () -> {
          redis.pause();
          sleep(500);
          paidWhileFrozen.set(history.pay(http, gateway.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A,
              Http.newKey(), Http.payment(4322, "tok_visa")));
          sleep(2_500);
          redis.resume();
        });
        workload.run(Duration.ofSeconds(6), 16, 150, 0.05, random);
        faults.join();
        workload.settle(Duration.ofSeconds(30));

        ExactlyOnceChecker.Report report = InfraFaultFixture.check(history, acquirer, TestGateway.pgUrl());
        assertThat(paidWhileFrozen.get().status()).isEqualTo(201);
        assertThat(report.ok()).isPositive();
        report.assertValid();
      }
    }
  }

  @Test
  @DisplayName("Redis frozen: once the gate's breaker is open, a new payment is answered without waiting for a Redis deadline, "
      + "and the log says so once, not at every payment")
  void frozenRedisCostsNoDeadlineOnceTheBreakerIsOpen() {
    try (ThrowawayRedis redis = ThrowawayRedis.start();
         Http http = new Http();
         CapturedLogs logs = CapturedLogs.of(RedisGate.class);
         TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REDIS_URL", redis.url(),
             "IDEMGATE_REDIS_TIMEOUT", "1500ms", "IDEMGATE_API_INSTANCES", "1"))) {
      assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(900, "tok_visa")).status())
          .isEqualTo(201);
      redis.pause();
      try {
        openBreaker(http, gateway, 901);

        // While it is open the claim skips Redis; the answer waited one redis_timeout for its write
        // to Redis all the same. Every second the breaker lets one claim try Redis again (half
        // open), which waits its deadline: most payments, not all, are quick.
        long warningsBefore = warnings(logs);
        int quick = 0;
        for (int i = 0; i < 10; i++) {
          long started = System.nanoTime();
          Http.Reply reply = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(920 + i, "tok_visa"));
          long ms = (System.nanoTime() - started) / 1_000_000;
          assertThat(reply.status()).as(reply.body()).isEqualTo(201);
          System.out.printf("payment %d while Redis is frozen: %d ms%n", i, ms);
          quick += ms < 1_000 ? 1 : 0;
        }
        assertThat(quick).as("payments answered well within redis_timeout (1,500 ms) of 10").isGreaterThanOrEqualTo(5);
        assertThat(warnings(logs) - warningsBefore).as("WARN lines of the gate for 10 payments while its breaker is open "
            + "(at most the tries of a half-open breaker)").isLessThanOrEqualTo(10 - quick);
        assertThat(logs.events().stream().filter(e -> e.getFormattedMessage().startsWith("redis gate breaker open")))
            .as("the breaker's opening is told once").hasSize(1);
      } finally {
        redis.resume();
      }
    }
  }

  @Test
  @DisplayName("Redis frozen under concurrent payments: once the gate's breaker is open, its one-second half-open tries "
      + "do not bring back a WARN line per payment (each payment's cache write went to the hung Redis while half open)")
  void frozenRedisUnderConcurrencyLogsNoLinePerPayment() {
    try (ThrowawayRedis redis = ThrowawayRedis.start();
         Http http = new Http();
         CapturedLogs logs = CapturedLogs.of(RedisGate.class);
         TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REDIS_URL", redis.url(),
             "IDEMGATE_REDIS_TIMEOUT", "500ms", "IDEMGATE_API_INSTANCES", "1"))) {
      assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(950, "tok_visa")).status())
          .isEqualTo(201);
      redis.pause();
      try {
        openBreaker(http, gateway, 951);
        Waits.eventually(Duration.ofSeconds(5), () -> logs.events().stream()
            .anyMatch(e -> e.getFormattedMessage().startsWith("redis gate breaker open")), "the gate's breaker opens");
        // The opening payments' own writes end within one redis_timeout of their answers.
        sleep(1_000);

        // Eight clients at once for three seconds: two or three half-open tries of the breaker.
        long warningsBefore = warnings(logs);
        int payments = 0;
        long until = System.nanoTime() + Duration.ofSeconds(3).toNanos();
        while (System.nanoTime() < until) {
          List<Future<Http.Reply>> batch = new ArrayList<>();
          for (int i = 0; i < 8; i++) {
            batch.add(http.payAsync(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(),
                Http.payment(1_000 + payments + i, "tok_visa").encode(), Map.of()));
          }
          for (Future<Http.Reply> reply : batch) {
            assertThat(Http.await(reply).status()).isEqualTo(201);
          }
          payments += batch.size();
        }
        sleep(1_000); // the background writes of the last payments end within one redis_timeout
        List<String> lines = logs.events().stream().filter(e -> e.getLevel() == Level.WARN).skip(warningsBefore)
            .map(e -> e.getFormattedMessage()).toList();
        System.out.printf("%d payments while Redis is frozen, %d WARN lines of the gate%n", payments, lines.size());
        assertThat(payments).isGreaterThanOrEqualTo(40);
        assertThat(lines).as("WARN lines of the gate while its breaker is open or half open, for %d payments", payments)
            .hasSizeLessThanOrEqualTo(3);
      } finally {
        redis.resume();
      }
    }
  }

  /** Six payments at once against a frozen Redis: five claims that time out open the gate's breaker (RedisGate.breaker). */
  private static void openBreaker(Http http, TestGateway gateway, long firstAmount) {
    List<Future<Http.Reply>> opening = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      opening.add(http.payAsync(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(),
          Http.payment(firstAmount + i, "tok_visa").encode(), Map.of()));
    }
    opening.forEach(reply -> assertThat(Http.await(reply).status()).isEqualTo(201));
  }

  private static long warnings(CapturedLogs logs) {
    return logs.events().stream().filter(e -> e.getLevel() == Level.WARN).count();
  }
}
