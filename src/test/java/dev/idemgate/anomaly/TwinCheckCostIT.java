package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * What the twin check costs on fresh-key throughput: two gateways in this JVM, policy off and policy
 * flag, loaded in alternating rounds so that both see the same machine. A measurement, not a gate:
 * it runs only with {@code -Didemgate.bench=true} (it is long and the figure is noisy on a shared box).
 */
@EnabledIfSystemProperty(named = "idemgate.bench", matches = "true")
class TwinCheckCostIT {
  private static final int CONCURRENCY = 32;
  private static final int PER_ROUND = 1_500;
  private static final int ROUNDS = 4;

  @Test
  @DisplayName("the twin check costs at most a few percent of fresh-key throughput")
  void cost() {
    try (TestGateway off = TestGateway.start(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "off"));
        TestGateway flag = TestGateway.start(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "flag"));
        Http http = new Http()) {
      run(http, off.apiPort(), 500);
      run(http, flag.apiPort(), 500);
      long offNanos = 0;
      long flagNanos = 0;
      for (int round = 0; round < ROUNDS; round++) {
        // Alternate which goes first, so a drift in machine load does not favour one side.
        if (round % 2 == 0) {
          offNanos += run(http, off.apiPort(), PER_ROUND);
          flagNanos += run(http, flag.apiPort(), PER_ROUND);
        } else {
          flagNanos += run(http, flag.apiPort(), PER_ROUND);
          offNanos += run(http, off.apiPort(), PER_ROUND);
        }
      }
      double offRate = ROUNDS * PER_ROUND / (offNanos / 1e9);
      double flagRate = ROUNDS * PER_ROUND / (flagNanos / 1e9);
      double cost = 1 - flagRate / offRate;
      System.out.printf("fresh-key throughput at concurrency %d: off %.0f req/s, flag %.0f req/s, cost %.1f%%%n",
          CONCURRENCY, offRate, flagRate, 100 * cost);
      assertThat(cost).isLessThan(0.10);
    }
  }

  /** Sends {@code n} fresh-key payments with {@link #CONCURRENCY} in flight; returns the elapsed nanos. */
  private static long run(Http http, int port, int n) {
    AtomicInteger started = new AtomicInteger();
    AtomicInteger failed = new AtomicInteger();
    long begin = System.nanoTime();
    Promise<Void> done = Promise.promise();
    AtomicInteger finished = new AtomicInteger();
    http.vertx().runOnContext(v -> {
      for (int i = 0; i < CONCURRENCY; i++) {
        next(http, port, n, started, finished, failed, done);
      }
    });
    Http.await(done.future());
    assertThat(failed.get()).isZero();
    return System.nanoTime() - begin;
  }

  private static void next(Http http, int port, int n, AtomicInteger started, AtomicInteger finished,
      AtomicInteger failed, Promise<Void> done) {
    if (started.getAndIncrement() >= n) {
      return;
    }
    Future<Http.Reply> reply = http.payAsync(port, TestGateway.KEY_A, Http.newKey(),
        Orders.payment(1999, "tok_bench").encode(), Map.of("X-Client-Id", "bench"));
    reply.onComplete(r -> {
      if (r.failed() || r.result().status() != 201) {
        failed.incrementAndGet();
        System.out.println("bench request failed: " + (r.failed() ? r.cause() : r.result().status() + " " + r.result().body()));
      }
      if (finished.incrementAndGet() == n) {
        done.tryComplete();
      } else {
        next(http, port, n, started, finished, failed, done);
      }
    });
  }
}
