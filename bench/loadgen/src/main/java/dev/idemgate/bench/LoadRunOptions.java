package dev.idemgate.bench;

import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import picocli.CommandLine.Option;

/** What the open and the closed loop share: the names on the result line, the measured window and the generator's loops. */
final class LoadRunOptions {
  @Option(names = "--scenario", defaultValue = "fresh", description = "Scenario name in the results.")
  String scenario;

  @Option(names = "--target-name", defaultValue = "gateway", description = "What is measured: gateway or bare.")
  String targetName;

  @Option(names = "--duration", defaultValue = "10s", description = "Measured duration. Default: ${DEFAULT-VALUE}.")
  String duration;

  @Option(names = "--warmup", defaultValue = "2s", description = "Unrecorded load first, the same as the measured load. Default: ${DEFAULT-VALUE}.")
  String warmup;

  @Option(names = "--drain", defaultValue = "10s", description = "How long to wait for the answers still out at the end. Default: ${DEFAULT-VALUE}.")
  String drain;

  @Option(names = "--event-loops", defaultValue = "1", description = "Load generator event loops. Default: ${DEFAULT-VALUE}.")
  int eventLoops;

  @Option(names = "--results", description = "JSON Lines file to append the result to.")
  Path results;

  long warmupNanos() {
    return BenchDurations.parse(warmup).toNanos();
  }

  long durationNanos() {
    return BenchDurations.parse(duration).toNanos();
  }

  long drainMillis() {
    return BenchDurations.parse(drain).toMillis();
  }

  /**
   * Starts {@code run} on an event-loop context of a Vert.x of its own, waits for the result line
   * it completes, appends it to {@code --results}, and closes that Vert.x.
   */
  void execute(BiConsumer<Vertx, Promise<JsonObject>> run) throws Exception {
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(eventLoops));
    try {
      Promise<JsonObject> done = Promise.promise();
      vertx.runOnContext(v -> run.accept(vertx, done));
      Results.append(results, done.future().toCompletionStage().toCompletableFuture().get());
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }
}
