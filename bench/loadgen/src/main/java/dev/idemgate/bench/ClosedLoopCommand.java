package dev.idemgate.bench;

import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Closed loop with a new key on every request: {@code --concurrency} requests are always in
 * flight, each answer sends the next one at once, and each latency runs from the actual send (so,
 * like wrk and h2load, it shows what the server sustains, not how it behaves at a fixed rate).
 * It exists for what neither tool can do: h2load sends the same headers on every request, so it
 * cannot send fresh idempotency keys over h2c.
 */
@Command(name = "closed", mixinStandardHelpOptions = true,
    description = "Closed-loop load, a new payment per request, latencies from the actual send (HdrHistogram).")
final class ClosedLoopCommand implements Callable<Integer> {
  @Mixin TargetOptions target;
  @Mixin LoadRunOptions load;

  @Option(names = "--concurrency", defaultValue = "32", description = "Requests in flight at all times. Default: ${DEFAULT-VALUE}.")
  int concurrency;

  /** Every request is a new payment: anything but a 201 is an error. */
  private static final int EXPECTED = 201;

  @Override
  public Integer call() throws Exception {
    if (concurrency < 1) {
      throw new IllegalArgumentException("--concurrency must be at least 1");
    }
    load.execute((vertx, done) -> new Run(vertx, done).start());
    return 0;
  }

  /** One run, confined to one event loop context. */
  private final class Run {
    private final Vertx vertx;
    private final Promise<JsonObject> done;
    private final HttpClient client;
    private final PaymentTraffic traffic;
    private final LatencyRecorder recorder = new LatencyRecorder();
    private final long warmupNanos;
    private final long measuredNanos;
    private long startNanos;
    private long sequence;
    private int inFlight;

    Run(Vertx vertx, Promise<JsonObject> done) {
      this.vertx = vertx;
      this.done = done;
      this.client = target.client(vertx);
      this.traffic = new PaymentTraffic(target.keyPrefix(load.scenario), 0);
      this.warmupNanos = load.warmupNanos();
      this.measuredNanos = load.durationNanos();
    }

    void start() {
      startNanos = System.nanoTime();
      for (int i = 0; i < concurrency; i++) {
        sendNext();
      }
      // Answers still out when the measured window ends are waited for up to --drain: a success is
      // not counted then (it left the window), a failure is (see sendNext).
      vertx.setTimer((warmupNanos + measuredNanos) / 1_000_000 + load.drainMillis(), id -> finish());
    }

    /**
     * The measured window is [warm-up end, warm-up end + duration): a request counts if it was sent
     * and answered in it. A request sent in it and failed after it (an error status or no answer)
     * still counts as an error, without a latency: dropping it would hide a server that fails
     * exactly the slowest requests.
     */
    private void sendNext() {
      long sentAt = System.nanoTime();
      if (sentAt - startNanos >= warmupNanos + measuredNanos) {
        if (inFlight == 0) {
          finish();
        }
        return;
      }
      long n = sequence++;
      inFlight++;
      target.pay(client, traffic.key(n), traffic.body(n))
          .onComplete(outcome -> {
            inFlight--;
            long answeredAt = System.nanoTime();
            boolean sentInWindow = sentAt - startNanos >= warmupNanos;
            boolean answeredInWindow = answeredAt - startNanos < warmupNanos + measuredNanos;
            if (sentInWindow && answeredInWindow) {
              if (outcome.succeeded()) {
                int status = outcome.result().statusCode();
                recorder.response(status, answeredAt - sentAt, status == EXPECTED);
              } else {
                recorder.failure(outcome.cause());
              }
            } else if (sentInWindow) {
              if (outcome.failed()) {
                recorder.failure(outcome.cause().getClass().getSimpleName() + "_after_window", 1);
              } else if (outcome.result().statusCode() != EXPECTED) {
                recorder.failure("status_" + outcome.result().statusCode() + "_after_window", 1);
              }
            }
            sendNext();
          });
    }

    private void finish() {
      if (done.future().isComplete()) {
        return;
      }
      recorder.failure("unfinished_at_drain_deadline", inFlight);
      JsonObject line = Results.line(load.scenario, "loadgen-closed", load.targetName, "closed", target.protocolLabel())
          .put("connections", concurrency)
          .mergeIn(recorder.figures(measuredNanos / 1e9))
          .put("expected_statuses", java.util.List.of(String.valueOf(EXPECTED)))
          .put("note", target.connectionsNote()
              + "a new key per request; latency from actual send (closed loop)");
      client.close();
      done.complete(line);
    }
  }
}
