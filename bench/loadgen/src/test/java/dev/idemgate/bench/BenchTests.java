package dev.idemgate.bench;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** What the load generator's tests share: a stub HTTP server on a free loopback port, and a ratio by name. */
final class BenchTests {
  private BenchTests() {}

  /** Starts {@code handler} on a free port of 127.0.0.1 and returns the port. */
  static int serve(Vertx vertx, Handler<HttpServerRequest> handler) throws Exception {
    return vertx.createHttpServer().requestHandler(handler).listen(0, "127.0.0.1")
        .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).actualPort();
  }

  /** Closes the stub's Vert.x, waiting at most 10 s. */
  static void close(Vertx vertx) throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  /** The ratio whose name starts with {@code prefix}. */
  static ReportCommand.Ratio ratio(List<ReportCommand.Ratio> ratios, String prefix) {
    return ratios.stream().filter(r -> r.name().startsWith(prefix)).findFirst().orElseThrow();
  }
}
