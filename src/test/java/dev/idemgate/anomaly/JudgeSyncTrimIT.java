package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The stream the instances share their observations through keeps what they still read, not 100 000 entries. */
class JudgeSyncTrimIT {
  @Test
  @DisplayName("an entry appended more than a minute before the last one read is trimmed from the stream by the next append")
  void oldEntriesAreTrimmed() {
    Vertx vertx = Vertx.vertx();
    Redis redis = Redis.createClient(vertx, TestGateway.redisUrl());
    String stream = "idemgate:test:observations:" + UUID.randomUUID(); // its own: the shared one serves other tests
    long now = System.currentTimeMillis();
    String old = (now - 10 * 60_000) + "-0";
    try {
      Http.await(redis.send(Request.cmd(Command.XADD).arg(stream).arg(old).arg("instance").arg("gone").arg("batch").arg("{}")));
      Http.await(redis.send(Request.cmd(Command.XADD).arg(stream).arg(now + "-0").arg("instance").arg("gone").arg("batch")
          .arg("{}")));
      GatewayConfig config = TestGateway.config(Map.of());
      Http.await(vertx.deployVerticle(new JudgeSyncVerticle(config, new SimpleMeterRegistry(), 100, stream)));
      AnomalyMonitor monitor = AnomalyMonitor.of(vertx, config, new SimpleMeterRegistry());
      // Two appends: the first after the start, the second once the first was read back.
      for (int i = 0; i < 2; i++) {
        int before = ids(redis, stream).size();
        monitor.recordFirst("m", "c", System.currentTimeMillis());
        Waits.eventually(Duration.ofSeconds(5), () -> ids(redis, stream).size() > before || !ids(redis, stream).contains(old),
            "the observation is appended");
        Http.await(vertx.timer(300)); // read back
      }
      assertThat(ids(redis, stream)).as("entries of the stream, ten minutes after the first").doesNotContain(old);
    } finally {
      Http.await(redis.send(Request.cmd(Command.DEL).arg(stream)));
      Http.await(vertx.close());
    }
  }

  private static List<String> ids(Redis redis, String stream) {
    Response entries = Http.await(redis.send(Request.cmd(Command.XRANGE).arg(stream).arg("-").arg("+")));
    List<String> ids = new ArrayList<>();
    for (Response entry : entries) {
      ids.add(entry.get(0).toString());
    }
    return ids;
  }
}
