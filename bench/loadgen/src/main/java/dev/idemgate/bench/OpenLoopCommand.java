package dev.idemgate.bench;

import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ThreadLocalRandom;
import org.HdrHistogram.Histogram;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Open loop: requests leave at a fixed rate whatever the server does, and each latency is measured
 * from the moment its request was due, not from when it was actually sent. A server that stalls
 * therefore shows its stall in every request that should have gone out meanwhile (no coordinated
 * omission), which a closed-loop tool like wrk hides by simply sending less.
 */
@Command(name = "open", mixinStandardHelpOptions = true,
    description = "Open-loop load at a fixed rate, latencies from the intended send time (HdrHistogram).")
final class OpenLoopCommand implements Callable<Integer> {
  @Mixin TargetOptions target;
  @Mixin LoadRunOptions load;

  @Option(names = "--mode", defaultValue = "fresh", description = "fresh, replay (primed keys) or mixed. Default: ${DEFAULT-VALUE}.")
  String mode;

  @Option(names = "--rate", defaultValue = "500", description = "Requests per second. Default: ${DEFAULT-VALUE}.")
  int rate;

  @Option(names = "--keys", defaultValue = "1000", description = "replay: how many primed keys there are. Default: ${DEFAULT-VALUE}.")
  int keys;

  @Option(names = "--duplicate-percent", defaultValue = "1", description = "mixed: share of requests that retry a recent key. Default: ${DEFAULT-VALUE}.")
  int duplicatePercent;

  @Option(names = "--decline-percent", defaultValue = "0", description = "Share of keys paid with tok_decline (402). Default: ${DEFAULT-VALUE}.")
  int declinePercent;

  @Override
  public Integer call() throws Exception {
    if (!Set.of("fresh", "replay", "mixed").contains(mode)) {
      throw new IllegalArgumentException("--mode must be fresh, replay or mixed");
    }
    if (mode.equals("replay") && target.keyPrefix == null) {
      throw new IllegalArgumentException("--mode replay needs the --key-prefix the keys were primed with");
    }
    load.execute((vertx, done) -> new Run(vertx, done).start());
    return 0;
  }

  /**
   * The send lag p99 above which the generator, not the server, set the pace: latencies from the
   * intended send time then include the generator's own delay.
   */
  static final double FELL_BEHIND_LAG_P99_MS = 10.0;

  /**
   * Whether an answer is right for its request. Judged per request, not per status: a 409 (the
   * key's other attempt still in flight) is right only for a key sent twice, a 402 only for a key
   * paid with tok_decline, and such a key must not be paid (201). Either attempt of a key sent twice
   * may get the 409: on another connection the retry can reach the gateway first and claim the key.
   */
  static boolean expected(int status, boolean declineKey, boolean sentTwice) {
    if (status == 409) {
      return sentTwice;
    }
    return status == (declineKey ? 402 : 201);
  }

  /** What {@link #expected} accepts in this mode, in words for the result line. */
  List<String> expectedStatuses() {
    List<String> out = new ArrayList<>();
    out.add(declinePercent > 0 ? "201 (402 on tok_decline keys)" : "201");
    if (mode.equals("mixed")) {
      out.add("409 only on a key sent twice (its retry, or its first attempt when the retry overtook it)");
    }
    return out;
  }

  /** One run, confined to one event loop context. */
  private final class Run {
    private final Vertx vertx;
    private final Promise<JsonObject> done;
    private final HttpClient client;
    private final PaymentTraffic traffic;
    private final LatencyRecorder recorder = new LatencyRecorder();
    /** How late the generator itself issued requests: if this grows, the load generator is the bottleneck. */
    private final Histogram sendLag = new Histogram(120_000_000L, 3);
    private final long intervalNanos;
    private final long warmupNanos;
    private final long totalNanos;
    private long startNanos;
    private long sent;
    private long inFlight;
    private long fresh;
    /** Duplicates sent in the measured window: those whose answers are in the figures. */
    private long duplicates;
    /** Set by {@link #nextSequence}: whether the sequence it returned retries an earlier key. */
    private boolean duplicate;
    /**
     * The sequences retried so far (one in a hundred requests). A first attempt that got 409 was
     * overtaken by its retry, which was therefore sent, and is here, before that answer came.
     */
    private final java.util.Set<Long> retried = new java.util.HashSet<>();
    private long replayed;
    private long timer;
    private boolean sending = true;

    Run(Vertx vertx, Promise<JsonObject> done) {
      this.vertx = vertx;
      this.done = done;
      this.client = target.client(vertx);
      this.traffic = new PaymentTraffic(target.keyPrefix(load.scenario), declinePercent);
      this.intervalNanos = 1_000_000_000L / rate;
      this.warmupNanos = load.warmupNanos();
      this.totalNanos = warmupNanos + load.durationNanos();
    }

    void start() {
      startNanos = System.nanoTime();
      timer = vertx.setPeriodic(1, id -> sendDue());
    }

    /** Sends every request whose intended time has come; a late timer tick sends a burst, as due. */
    private void sendDue() {
      long now = System.nanoTime();
      long elapsed = Math.min(now - startNanos, totalNanos);
      long due = elapsed / intervalNanos + 1;
      while (sent < due) {
        long intended = startNanos + sent * intervalNanos;
        if (intended - startNanos >= warmupNanos) {
          sendLag.recordValue(Math.max(1, Math.min(120_000_000L, (System.nanoTime() - intended) / 1_000)));
        }
        send(intended);
        sent++;
      }
      if (now - startNanos >= totalNanos) {
        vertx.cancelTimer(timer);
        sending = false;
        long drainMs = load.drainMillis();
        vertx.setTimer(drainMs, id -> finish());
        finishIfDrained();
      }
    }

    private void send(long intendedNanos) {
      long sequence = nextSequence();
      boolean retry = duplicate;
      boolean recorded = intendedNanos - startNanos >= warmupNanos;
      if (recorded && retry) {
        duplicates++;
      }
      inFlight++;
      target.pay(client, traffic.key(sequence), traffic.body(sequence))
          .onComplete(outcome -> {
            inFlight--;
            if (recorded) {
              if (outcome.succeeded()) {
                HttpClientResponse response = outcome.result();
                int status = response.statusCode();
                recorder.response(status, System.nanoTime() - intendedNanos,
                    expected(status, traffic.declines(sequence), retry || retried.contains(sequence)));
                if ("true".equals(response.getHeader("Idempotent-Replayed"))) {
                  replayed++;
                }
              } else {
                recorder.failure(outcome.cause());
              }
            }
            finishIfDrained();
          });
    }

    private long nextSequence() {
      ThreadLocalRandom random = ThreadLocalRandom.current();
      duplicate = false;
      switch (mode) {
        case "replay":
          return random.nextLong(keys);
        case "mixed":
          if (fresh > 0 && random.nextInt(100) < duplicatePercent) {
            duplicate = true;
            // A client retrying soon after its first attempt: one of the last hundred keys.
            long earlier = fresh - 1 - random.nextLong(Math.min(fresh, 100));
            retried.add(earlier);
            return earlier;
          }
          return fresh++;
        default:
          return fresh++;
      }
    }

    private void finishIfDrained() {
      if (!sending && inFlight == 0) {
        finish();
      }
    }

    private void finish() {
      if (done.future().isComplete()) {
        return;
      }
      recorder.failure("unfinished_at_drain_deadline", inFlight);
      double seconds = Duration.ofNanos(totalNanos - warmupNanos).toNanos() / 1e9;
      double lagP99 = LatencyRecorder.millis(sendLag.getValueAtPercentile(99));
      JsonObject line = Results.line(load.scenario, "loadgen-open", load.targetName, "open", target.protocolLabel())
          .put("connections", target.connections).put("rate", rate)
          .mergeIn(recorder.figures(seconds))
          .put("replayed", replayed).put("duplicates_sent", duplicates)
          .put("expected_statuses", expectedStatuses())
          .put("generator_lag_p99_ms", lagP99)
          .put("generator_lag_max_ms", LatencyRecorder.millis(sendLag.getMaxValue()))
          .put("generator_fell_behind", lagP99 > FELL_BEHIND_LAG_P99_MS)
          .put("note", target.connectionsNote()
              + "latency from the intended send time (open loop)");
      client.close();
      done.complete(line);
    }
  }
}
