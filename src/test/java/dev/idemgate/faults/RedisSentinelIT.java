package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.ChildProcess;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedis;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The gateway behind Redis Sentinel, as a Kubernetes Redis chart deploys it. */
class RedisSentinelIT {

  @Test
  @DisplayName("with redis_mode sentinel the gateway finds the master through the sentinel, and gates and replays through it")
  void gatesThroughSentinel() throws Exception {
    try (ThrowawayRedis master = ThrowawayRedis.start(); Http http = new Http()) {
      Path dir = Files.createTempDirectory("idemgate-sentinel-");
      int sentinelPort = TestGateway.freePort();
      Path conf = dir.resolve("sentinel.conf");
      Files.writeString(conf, String.join("\n",
          "port " + sentinelPort,
          "bind 127.0.0.1",
          "dir " + dir,
          "sentinel monitor mymaster 127.0.0.1 " + master.port() + " 1",
          "sentinel down-after-milliseconds mymaster 1000", ""));
      try (ChildProcess sentinel = ChildProcess.start("sentinel:" + sentinelPort,
          List.of("redis-server", conf.toString(), "--sentinel"), Map.of(), dir.resolve("sentinel.log"))) {
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
}
