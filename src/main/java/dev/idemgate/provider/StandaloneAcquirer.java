package dev.idemgate.provider;

import dev.idemgate.Idemgate;
import io.vertx.core.Vertx;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The acquirer simulator as its own process ({@code idemgate acquirer}): a Vert.x instance running one
 * {@link AcquirerServer}. {@link #start} and {@link #close} block the calling thread, never an event loop.
 */
public final class StandaloneAcquirer implements AutoCloseable {
  private static final long STARTUP_TIMEOUT_SECONDS = 30;

  private final Vertx vertx;
  private final AcquirerServer server;

  private StandaloneAcquirer(Vertx vertx, AcquirerServer server) {
    this.vertx = vertx;
    this.server = server;
  }

  /** Starts listening on {@code port} (0: any free port); fails with a one-line {@link Idemgate.StartupFailure}. */
  public static StandaloneAcquirer start(int port, long latencyMs, long slowMs, boolean dedup) {
    Vertx vertx = Vertx.vertx();
    AcquirerServer server = new AcquirerServer(port, latencyMs, slowMs, dedup);
    try {
      vertx.deployVerticle(server).toCompletionStage().toCompletableFuture().get(STARTUP_TIMEOUT_SECONDS, TimeUnit.SECONDS);
      return new StandaloneAcquirer(vertx, server);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      vertx.close();
      throw new Idemgate.StartupFailure("acquirer start-up interrupted");
    } catch (ExecutionException | TimeoutException e) {
      vertx.close();
      Throwable cause = e.getCause() == null ? e : e.getCause();
      throw new Idemgate.StartupFailure("the acquirer could not listen on port " + port + ": "
          + (cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage()));
    }
  }

  public int port() {
    return server.actualPort();
  }

  @Override
  public void close() {
    try {
      vertx.close().toCompletionStage().toCompletableFuture().get(STARTUP_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      // Shutting down anyway; nothing is left to protect.
    }
  }
}
