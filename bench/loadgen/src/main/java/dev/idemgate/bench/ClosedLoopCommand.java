package dev.idemgate.bench;

import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpClient;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
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

  @Option(names = "--scenario", defaultValue = "fresh", description = "Scenario name in the results.")
  String scenario;

  @Option(names = "--target-name", defaultValue = "gateway", description = "What is measured: gateway or bare.")
  String targetName;

  @Option(names = "--concurrency", defaultValue = "32", description = "Requests in flight at all times. Default: ${DEFAULT-VALUE}.")
  int concurrency;

  @Option(names = "--duration", defaultValue = "10s", description = "Measured duration. Default: ${DEFAULT-VALUE}.")
  String duration;

  @Option(names = "--warmup", defaultValue = "2s", description = "Unrecorded load first. Default: ${DEFAULT-VALUE}.")
  String warmup;

  @Option(names = "--drain", defaultValue = "10s", description = "How long to wait for the answers in flight at the end. Default: ${DEFAULT-VALUE}.")
  String drain;

  @Option(names = "--event-loops", defaultValue = "1", description = "Load generator event loops. Default: ${DEFAULT-VALUE}.")
  int eventLoops;

  @Option(names = "--results", description = "JSON Lines file to append the result to.")
  Path results;

  private static final Set<Integer> EXPECTED = Set.of(201);

  @Override
  public Integer call() throws Exception {
    if (concurrency < 1) {
      throw new IllegalArgumentException("--concurrency must be at least 1");
    }
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(eventLoops));
    try {
      Promise<JsonObject> done = Promise.promise();
      vertx.runOnContext(v -> new Run(vertx, done).start());
      JsonObject result = done.future().toCompletionStage().toCompletableFuture().get();
      Results.append(results, result);
      return 0;
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
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
      this.traffic = new PaymentTraffic(target.keyPrefix(scenario), 0);
      this.warmupNanos = BenchDurations.parse(warmup).toNanos();
      this.measuredNanos = BenchDurations.parse(duration).toNanos();
    }

    void start() {
      startNanos = System.nanoTime();
      for (int i = 0; i < concurrency; i++) {
        sendNext();
      }
      // Answers still out when the measured window ends are waited for up to --drain, not counted.
      vertx.setTimer((warmupNanos + measuredNanos) / 1_000_000 + BenchDurations.parse(drain).toMillis(), id -> finish());
    }

    /** The measured window is [warm-up end, warm-up end + duration): a request counts if it was sent and answered in it. */
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
      client.request(target.pay(traffic.key(n)))
          .compose(request -> request.send(traffic.body(n)))
          .compose(response -> response.body().map(body -> response))
          .onComplete(outcome -> {
            inFlight--;
            long answeredAt = System.nanoTime();
            boolean measured = sentAt - startNanos >= warmupNanos && answeredAt - startNanos < warmupNanos + measuredNanos;
            if (measured) {
              if (outcome.succeeded()) {
                recorder.response(outcome.result().statusCode(), answeredAt - sentAt);
              } else {
                recorder.failure(outcome.cause());
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
      JsonObject line = Results.line(scenario, "loadgen-closed", targetName, "closed", target.protocolLabel())
          .put("connections", concurrency)
          .mergeIn(recorder.figures(measuredNanos / 1e9, EXPECTED))
          .put("expected_statuses", EXPECTED.stream().map(String::valueOf).toList())
          .put("note", (target.h2c() ? target.connections + " connections x " + target.streams + " streams; " : "")
              + "a new key per request; latency from actual send (closed loop)");
      client.close();
      done.complete(line);
    }
  }
}
