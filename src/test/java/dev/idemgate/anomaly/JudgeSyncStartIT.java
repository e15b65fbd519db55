package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.SilentListener;
import dev.idemgate.support.TestGateway;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The judge's exchange starts promptly whatever Redis does, as start-up must not wait on it. */
class JudgeSyncStartIT {
  @Test
  @DisplayName("with Redis silent and a redis_timeout of 40 s, the exchange starts within a few seconds (from its own clock)")
  void silentRedisDoesNotHoldStartUp() throws Exception {
    Vertx vertx = Vertx.vertx();
    try (SilentListener silent = new SilentListener()) {
      JudgeSyncVerticle sync = new JudgeSyncVerticle(TestGateway.config(Map.of(
          "IDEMGATE_REDIS_URL", "redis://127.0.0.1:" + silent.port(),
          "IDEMGATE_REDIS_TIMEOUT", "40s",
          "IDEMGATE_REDIS_AT_START", "optional")), new SimpleMeterRegistry());
      long started = System.nanoTime();
      vertx.deployVerticle(sync).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      Duration took = Duration.ofNanos(System.nanoTime() - started);

      assertThat(silent.acceptedCount()).as("the exchange did reach the silent Redis").isPositive();
      assertThat(took).isLessThan(Duration.ofMillis(JudgeSyncVerticle.START_READ_MAX_MS + 3_000));
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }
}
