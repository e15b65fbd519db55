package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.ChildProcess;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.ThrowawayRedis;
import dev.idemgate.support.Waits;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The gateway behind Redis Sentinel, as a Kubernetes Redis chart deploys it. */
class RedisSentinelIT {

  /** A sentinel on {@code port} watching {@code master} as {@code mymaster} (quorum 1, down after 1 s), plus {@code extra} lines. */
  private static ChildProcess startSentinel(int port, ThrowawayRedis master, String... extra) throws IOException {
    Path dir = Files.createTempDirectory("idemgate-sentinel-");
    Path conf = dir.resolve("sentinel.conf");
    List<String> lines = new ArrayList<>(List.of(
        "port " + port,
        "bind 127.0.0.1",
        "dir " + dir,
        "sentinel monitor mymaster 127.0.0.1 " + master.port() + " 1",
        "sentinel down-after-milliseconds mymaster 1000"));
    lines.addAll(List.of(extra));
    Files.writeString(conf, String.join("\n", lines) + "\n");
    return ChildProcess.start("sentinel:" + port, List.of("redis-server", conf.toString(), "--sentinel"), Map.of(),
        dir.resolve("sentinel.log"));
  }

  @Test
  @DisplayName("with redis_mode sentinel the gateway finds the master through the sentinel, and gates and replays through it")
  void gatesThroughSentinel() throws Exception {
    try (ThrowawayRedis master = ThrowawayRedis.start(); Http http = new Http()) {
      int sentinelPort = TestGateway.freePort();
      try (ChildProcess sentinel = startSentinel(sentinelPort, master)) {
        Thread.sleep(500);
        long before = master.dbSize();
        try (TestGateway gateway = TestGateway.start(Map.of(
            "IDEMGATE_REDIS_MODE", "sentinel",
            "IDEMGATE_REDIS_URL", "redis://127.0.0.1:" + sentinelPort,
            "IDEMGATE_REDIS_MASTER_NAME", "mymaster"))) {
          String key = Http.newKey();
          JsonObject body = Http.payment(1234, "tok_visa");
          Http.Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);
          Http.Reply replay = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);

          assertThat(first.status()).isEqualTo(201);
          assertThat(replay.header("Idempotent-Replayed")).isEqualTo("true");
          assertThat(replay.body()).isEqualTo(first.body());
          assertThat(master.dbSize()).as("the gate's record is on the master the sentinel named").isGreaterThan(before);
          assertThat(http.get(gateway.managementPort(), "/health/ready", null).json().getString("status")).isEqualTo("UP");
        }
      }
    }
  }

  @Test
  @DisplayName("with redis_mode sentinel, when the master dies and the sentinel promotes its replica, the gateway "
      + "follows: new payments gate and replay through the new master, with no Redis call failing any more")
  void followsFailover() throws Exception {
    try (ThrowawayRedis master = ThrowawayRedis.start(); ThrowawayRedis replica = ThrowawayRedis.startReplicaOf(master);
         Http http = new Http()) {
      Waits.eventually(Duration.ofSeconds(20), () -> String.valueOf(RespCommand.call(replica.port(), "INFO", "replication"))
          .contains("master_link_status:up"), "the replica is in sync with the master");
      int sentinelPort = TestGateway.freePort();
      try (ChildProcess sentinel = startSentinel(sentinelPort, master, "sentinel failover-timeout mymaster 5000")) {
        Waits.eventually(Duration.ofSeconds(20),
            () -> "1".equals(RespCommand.call(sentinelPort, "SENTINEL", "REPLICAS", "mymaster")),
            "the sentinel knows the replica");
        try (TestGateway gateway = TestGateway.start(Map.of(
            "IDEMGATE_REDIS_MODE", "sentinel",
            "IDEMGATE_REDIS_URL", "redis://127.0.0.1:" + sentinelPort,
            "IDEMGATE_REDIS_MASTER_NAME", "mymaster",
            "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
          assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(1000, "tok_visa")).status())
              .isEqualTo(201);

          master.kill();
          Waits.eventually(Duration.ofSeconds(30), () -> "master".equals(replica.role()),
              "the sentinel promotes the replica:\n" + sentinel.logTail());
          // Payments go on through PostgreSQL meanwhile; the gate comes back once the pipeline has
          // reconnected to the master the sentinel names now.
          Waits.eventually(Duration.ofSeconds(20), () -> {
            long before = replica.dbSize();
            int status = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(1001, "tok_visa")).status();
            return status == 201 && replica.dbSize() > before;
          }, "a new payment's record lands on the new master");

          // Each API verticle has its own pipeline and gate breaker, and may still hold its breaker
          // open for a moment: within seconds every round of payments must be clean.
          Waits.eventually(Duration.ofSeconds(20), () -> {
            long before = replica.dbSize();
            return GateRounds.payAndReplay(http, gateway, 10).isEmpty() && replica.dbSize() >= before + 10;
          }, "a round of 10 payments and replays, all through the new master, with no Redis call failing");
        }
      }
    }
  }
}
