package dev.idemgate.bench;

import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The bare Vert.x baseline: an endpoint that reads the request body and answers with a payment
 * body like the gateway's, and does nothing else (no auth, no Redis, no Postgres). Its throughput
 * is what Vert.x itself costs on this machine, the ceiling a replay could approach. It runs on the
 * gateway's transport (Linux epoll where it loads, as the gateway prefers it), and says which one it
 * got: a baseline on the JDK's NIO against a gateway on epoll would compare transports, not work.
 */
@Command(name = "bare", mixinStandardHelpOptions = true,
    description = "Serve a bare Vert.x endpoint answering POST /pay with a canned 201 payment body.")
final class BareCommand implements Callable<Integer> {
  static final Buffer PAYMENT = Buffer.buffer("{\"id\":\"pay_0193a5f3e2c1a6b7c8d9e0f1a2b3c4d5e6f7\",\"status\":\"succeeded\","
      + "\"amount\":1999,\"currency\":\"EUR\",\"merchant_reference\":\"order-1\",\"provider\":\"simulator\","
      + "\"provider_reference\":\"sim_ch_0193a5f3e2c1a6b7\",\"decline_code\":null,\"created_at\":\"2026-11-28T01:00:00.000Z\"}");

  @Option(names = "--port", defaultValue = "8099", description = "Port on 127.0.0.1. Default: ${DEFAULT-VALUE}.")
  int port;

  @Option(names = "--instances", defaultValue = "0", description = "Server verticles; 0 = one per core, like the gateway. Default: ${DEFAULT-VALUE}.")
  int instances;

  @Option(names = "--fact-file", description = "key=value facts file of the run: appends bare_transport=... to it.")
  Path factFile;

  @Override
  public Integer call() throws Exception {
    int n = instances > 0 ? instances : Runtime.getRuntime().availableProcessors();
    // As the gateway does (Idemgate.java): epoll when it loads, else the JDK's NIO.
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(n).setPreferNativeTransport(true));
    vertx.deployVerticle(() -> new BareVerticle(port), new DeploymentOptions().setInstances(n))
        .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    String transport = transport(vertx);
    System.out.println("bare Vert.x endpoint on 127.0.0.1:" + port + " (" + n + " instances), transport: " + transport);
    if (factFile != null) {
      Files.writeString(factFile, "bare_transport=" + transport + "\n", StandardCharsets.UTF_8,
          StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      vertx.close();
      stopped.countDown();
    }, "bare-shutdown"));
    // Serves until the runner sends SIGTERM; the hook above closes the servers.
    stopped.await();
    return 0;
  }

  /** "native (epoll)" or "JDK NIO (why native did not load)", for the output and the facts. */
  static String transport(Vertx vertx) {
    return vertx.isNativeTransportEnabled() ? "native (epoll)"
        : "JDK NIO (native unavailable: " + String.valueOf(vertx.unavailableNativeTransportCause()).replace('\n', ' ') + ")";
  }

  static final class BareVerticle extends VerticleBase {
    private final int port;
    private HttpServer server;

    BareVerticle(int port) {
      this.port = port;
    }

    @Override
    public Future<?> start() {
      server = vertx.createHttpServer(new HttpServerOptions().setHost("127.0.0.1").setPort(port))
          .requestHandler(this::answer);
      return server.listen();
    }

    private void answer(HttpServerRequest request) {
      String key = request.getHeader("Idempotency-Key");
      request.body().onSuccess(body -> {
        var response = request.response().setStatusCode(201)
            .putHeader("Content-Type", "application/json")
            .putHeader("Location", "/v1/payments/pay_0193a5f3e2c1a6b7c8d9e0f1a2b3c4d5e6f7");
        if (key != null) {
          response.putHeader("Idempotency-Key", key);
        }
        response.end(PAYMENT);
      });
    }

    @Override
    public Future<?> stop() {
      return server == null ? Future.succeededFuture() : server.close();
    }
  }
}
