package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedisCluster;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The gateway on a Redis Cluster of three masters: the fast gate must work there, not only fall back to PostgreSQL. */
class RedisClusterIT {

  @Test
  @DisplayName("with redis_mode cluster, concurrent payments gate, complete and replay through the cluster, spread over its nodes, with no Redis call failing")
  void gatesThroughCluster() {
    try (ThrowawayRedisCluster cluster = ThrowawayRedisCluster.start(); Http http = new Http();
         CapturedLogs gateLog = CapturedLogs.of(RedisGate.class);
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_REDIS_MODE", "cluster",
             "IDEMGATE_REDIS_URL", cluster.urls(),
             // 64 payments at once on a loaded 2-core machine met the default 500 ms once; what is
             // tested is that no call fails through the cluster, not how fast it answers.
             "IDEMGATE_REDIS_TIMEOUT", "3s",
             // Replays must come from Redis, not from the in-process cache.
             "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      // Many requests at once, so that one event-loop turn sends the commands of several
      // payments, whose records are in different hash slots.
      List<String> keys = new ArrayList<>();
      List<String> bodies = new ArrayList<>();
      List<Future<Http.Reply>> first = new ArrayList<>();
      for (int i = 0; i < 64; i++) {
        keys.add(Http.newKey());
        bodies.add(Http.payment(1000 + i, "tok_visa").encode());
        first.add(http.payAsync(gateway.apiPort(), TestGateway.KEY_A, keys.get(i), bodies.get(i), Map.of()));
      }
      List<Future<Http.Reply>> again = new ArrayList<>();
      for (int i = 0; i < 64; i++) {
        assertThat(Http.await(first.get(i)).status()).isEqualTo(201);
      }
      for (int i = 0; i < 64; i++) {
        again.add(http.payAsync(gateway.apiPort(), TestGateway.KEY_A, keys.get(i), bodies.get(i), Map.of()));
      }
      for (int i = 0; i < 64; i++) {
        Http.Reply replay = Http.await(again.get(i));
        assertThat(replay.header("Idempotent-Replayed")).isEqualTo("true");
        assertThat(replay.body()).isEqualTo(Http.await(first.get(i)).body());
      }

      assertThat(cluster.keysPerNode()).as("records on every master").allMatch(keysOnNode -> keysOnNode > 0);
      assertThat(gateLog.events().stream().filter(e -> e.getLevel().isGreaterOrEqual(Level.WARN))
          .map(e -> e.getFormattedMessage()))
          .as("no gate, completion or release call failed (each would fall back to PostgreSQL)").isEmpty();
      assertThat(http.get(gateway.managementPort(), "/health/ready", null).json().getJsonObject("checks").getString("redis"))
          .as("readiness's Redis check (a write probe, with no key) through the cluster").isEqualTo("UP");
    }
  }

  @Test
  @DisplayName("with redis_mode cluster, a twin waiting with Prefer: wait is woken by the completion published through the cluster")
  void waitersAreWokenThroughCluster() {
    try (ThrowawayRedisCluster cluster = ThrowawayRedisCluster.start(); Http http = new Http();
         TestDb db = new TestDb(http.vertx());
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_REDIS_MODE", "cluster",
             "IDEMGATE_REDIS_URL", cluster.urls(),
             "IDEMGATE_SIMULATOR_SLOW_MS", "1500"))) {
      String key = Http.newKey();
      String body = Http.payment(4321, "tok_slow").encode();
      Future<Http.Reply> slow = http.payAsync(gateway.apiPort(), TestGateway.KEY_A, key, body, Map.of());
      // Claimed, now at the provider: the twin finds it in flight and waits for it (sent sooner, the
      // twin could claim the key first, and the first request be refused 409).
      Waits.eventually(Duration.ofSeconds(10), () -> "PROCESSING".equals(db.keyState(TestGateway.MERCHANT_A, key)),
          "the first request is claimed in PostgreSQL, its charge under way");

      long started = System.nanoTime();
      Http.Reply waited = Http.await(http.payAsync(gateway.apiPort(), TestGateway.KEY_A, key, body,
          Map.of("Prefer", "wait=25")));
      long waitedMs = (System.nanoTime() - started) / 1_000_000;

      assertThat(waited.status()).as(waited.body()).isEqualTo(201);
      // The gateway caps a wait at 10 s.
      assertThat(waited.header("Preference-Applied")).as("the twin found the payment in flight and waited").isEqualTo("wait=10");
      assertThat(waited.body()).isEqualTo(Http.await(slow).body());
      assertThat(waitedMs).as("woken by the completion notice, not by the end of its wait (capped at 10 s)").isLessThan(10_000);
    }
  }

  @Test
  @DisplayName("with redis_mode cluster, when a master dies and the cluster promotes its replica, the gateway follows: "
      + "within seconds every payment gates and replays through the cluster again, with no Redis call failing")
  void followsFailover() {
    try (ThrowawayRedisCluster cluster = ThrowawayRedisCluster.startWithReplicas(); Http http = new Http();
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_REDIS_MODE", "cluster",
             "IDEMGATE_REDIS_URL", cluster.urls(),
             "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(900, "tok_visa")).status())
          .isEqualTo(201);

      cluster.killMaster(0);
      Waits.eventually(Duration.ofSeconds(30), () -> cluster.failedOver(0), "the cluster promotes the replica of master 0");
      // Meanwhile payments go on through PostgreSQL alone; each API verticle's pipeline reconnects
      // and its gate breaker closes again.
      Waits.eventually(Duration.ofSeconds(30), () -> GateRounds.payAndReplay(http, gateway, 20).isEmpty(),
          "a round of 20 payments and replays with no Redis call failing");
    }
  }
}
