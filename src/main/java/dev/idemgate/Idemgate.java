package dev.idemgate;

import dev.idemgate.anomaly.JudgeSyncVerticle;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.http.ApiVerticle;
import dev.idemgate.http.ManagementVerticle;
import dev.idemgate.http.ReadinessState;
import dev.idemgate.provider.LocalCodec;
import dev.idemgate.provider.ProviderVerticle;
import dev.idemgate.storage.Migrations;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.micrometer.MicrometerMetricsFactory;
import io.vertx.micrometer.MicrometerMetricsOptions;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisOptions;
import io.vertx.redis.client.Request;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running gateway: start-up checks, the Vert.x instance and its verticles. {@link #start} and
 * {@link #close} block the calling thread (main, or a test), never an event loop.
 */
public final class Idemgate implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Idemgate.class);
  private static final Duration STARTUP_TIMEOUT = Duration.ofSeconds(30);

  private final Vertx vertx;
  private final GatewayConfig config;
  private final ReadinessState readiness;

  private Idemgate(Vertx vertx, GatewayConfig config, ReadinessState readiness) {
    this.vertx = vertx;
    this.config = config;
    this.readiness = readiness;
  }

  /** Migrates the schema, checks Redis, deploys everything; fails with {@link StartupFailure} naming what is wrong. */
  public static Idemgate start(GatewayConfig config) {
    int applied = Migrations.migrate(config.pgUrl());
    if (applied > 0) {
      log.info("schema migrated: {} migration(s) applied", applied);
    }
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    Vertx vertx = Vertx.builder()
        .with(new VertxOptions().setMetricsOptions(new MicrometerMetricsOptions().setEnabled(true)))
        .withMetrics(new MicrometerMetricsFactory(registry))
        .build();
    try {
      vertx.eventBus().registerCodec(new LocalCodec());
      await(checkRedis(vertx, config), "Redis at " + config.redisUrl().replaceFirst("://[^@]*@", "://") + " cannot be reached");
      ReadinessState readiness = new ReadinessState();
      await(vertx.deployVerticle(new ProviderVerticle(config))
          .compose(id -> vertx.deployVerticle(() -> new ApiVerticle(config, registry),
              new DeploymentOptions().setInstances(config.effectiveApiInstances())))
          .compose(id -> vertx.deployVerticle(new ManagementVerticle(config, registry, readiness)))
          .compose(id -> vertx.deployVerticle(new JudgeSyncVerticle(config, registry))),
          "the gateway could not start listening on ports " + config.httpPort() + "/" + config.managementPort());
      log.info("idemgate ready: api on port {}, management on port {}, {}", config.httpPort(), config.managementPort(), config);
      return new Idemgate(vertx, config, readiness);
    } catch (RuntimeException e) {
      vertx.close();
      throw e;
    }
  }

  private static Future<Void> checkRedis(Vertx vertx, GatewayConfig config) {
    Redis redis = Redis.createClient(vertx, new RedisOptions().setConnectionString(config.redisUrl()));
    return redis.send(Request.cmd(Command.PING)).timeout(5, TimeUnit.SECONDS).<Void>mapEmpty()
        .eventually(redis::close);
  }

  public Vertx vertx() {
    return vertx;
  }

  public GatewayConfig config() {
    return config;
  }

  public ReadinessState readiness() {
    return readiness;
  }

  @Override
  public void close() {
    readiness.startDraining();
    try {
      vertx.close().toCompletionStage().toCompletableFuture().get(STARTUP_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      log.warn("vert.x did not close cleanly: {}", e.toString());
    }
  }

  private static <T> T await(Future<T> future, String whatFailed) {
    try {
      return future.toCompletionStage().toCompletableFuture().get(STARTUP_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new StartupFailure(whatFailed + ": interrupted");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause() == null ? e : e.getCause();
      throw new StartupFailure(whatFailed + ": " + (cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage()));
    } catch (TimeoutException e) {
      throw new StartupFailure(whatFailed + ": no answer in " + STARTUP_TIMEOUT.toSeconds() + "s");
    }
  }

  /** Start-up could not complete; the message is one line for the operator. */
  public static final class StartupFailure extends RuntimeException {
    public StartupFailure(String message) {
      super(message);
    }
  }
}
