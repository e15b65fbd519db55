package dev.idemgate;

import dev.idemgate.anomaly.JudgeSyncVerticle;
import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.auth.MerchantKeys;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.http.ApiVerticle;
import dev.idemgate.http.DrainTally;
import dev.idemgate.http.ManagementVerticle;
import dev.idemgate.http.ReadinessState;
import dev.idemgate.idempotency.ReplayCache;
import dev.idemgate.idempotency.SharedIdempotencyStore;
import dev.idemgate.observability.GatewayMetrics;
import dev.idemgate.observability.PathOnlyTracing;
import dev.idemgate.observability.Tracing;
import dev.idemgate.provider.LocalCodec;
import dev.idemgate.provider.ProviderVerticle;
import dev.idemgate.ratelimit.MerchantRateLimiter;
import dev.idemgate.ratelimit.RateLimitSyncVerticle;
import dev.idemgate.reconciliation.ReconciliationSettings;
import dev.idemgate.recovery.RecoveryVerticle;
import dev.idemgate.storage.Migrations;
import dev.idemgate.storage.RedisClients;
import dev.idemgate.storage.ServerLimits;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.composite.CompositeMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxBuilder;
import io.vertx.core.VertxOptions;
import io.vertx.micrometer.MetricsDomain;
import io.vertx.micrometer.MicrometerMetricsFactory;
import io.vertx.micrometer.MicrometerMetricsOptions;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import io.vertx.tracing.opentelemetry.OpenTelemetryOptions;
import io.vertx.tracing.opentelemetry.OpenTelemetryTracingFactory;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running gateway: start-up checks, the Vert.x instance and its verticles. {@link #start} and
 * {@link #close} block the calling thread (main, a signal handler, or a test), never an event loop.
 */
public final class Idemgate implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Idemgate.class);
  private static final Duration STARTUP_TIMEOUT = Duration.ofSeconds(30);
  /** How long the start-up check waits for Redis's answer to PING. */
  private static final long REDIS_CHECK_SECONDS = 5;
  /** How the Sentinel and Cluster clients' failures begin when they list each endpoint's failure. */
  private static final String ALL_ENDPOINTS_FAILED = "Cannot connect to any of the provided endpoints";
  private static final String ALL_NODES_FAILED = "Failed to connect to all nodes of the cluster";
  /**
   * Redis's own failures that say it is not there yet: the connection closed with no answer (a
   * server that hangs, closed at the client's read-idle deadline; a proxy with no Redis behind it)
   * and a server still loading its data.
   */
  private static final Pattern NOT_THERE_YET = Pattern.compile("(?:CONNECTION_CLOSED|LOADING)\\b");
  /**
   * A connection the other end reset (TCP RST) before answering, as {@code <exception class>:
   * <message>}: Netty's epoll says {@code Errors$NativeIoException: recvAddress(..) failed with
   * error(-104): Connection reset by peer}; the JDK's NIO {@code SocketException: Connection reset},
   * {@code Connection reset by peer: /host:port} or {@code IOException: Connection reset by peer},
   * or, when the reset closed the connection before the client wrote its first command, Vert.x's
   * {@code Connection was closed}. All seen against a server that accepts and resets.
   */
  private static final String RESET = "(?:[\\w$.]+\\.)?(?:IOException|[\\w$]*SocketException|Errors\\$NativeIoException): "
      + "(?:[^:]*: )?Connection reset\\b|io\\.vertx\\.core\\.VertxException: Connection was closed$";
  private static final Pattern CONNECTION_RESET = Pattern.compile(RESET);
  /** An endpoint's line in such a failure that says it could not be reached. */
  private static final Pattern UNREACHABLE_LINE = Pattern.compile(
      "- (?:[\\w$.]+\\.)?(?:[\\w$]*ConnectException|[\\w$]*ConnectTimeoutException|NoRouteToHostException"
      + "|UnknownHostException|[\\w$]*TimeoutException)\\b|- (?:CONNECTION_CLOSED|LOADING)\\b|- (?:" + RESET + ")");
  /** How long stopping may take beyond drain_timeout: the API verticles' last closes, then Vert.x's. */
  private static final Duration UNDEPLOY_MARGIN = Duration.ofSeconds(5);
  private static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(10);
  /** How long the spans still buffered may take to reach the collector on stop ({@code tracing: otlp}). */
  private static final Duration TRACING_FLUSH_TIMEOUT = Duration.ofSeconds(3);
  /**
   * The longest a stop takes after {@code drain_timeout}. Kubernetes' grace period must cover the
   * preStop pause, the drain and this, or the kubelet kills the process mid-close.
   */
  public static final Duration STOP_AFTER_DRAIN = UNDEPLOY_MARGIN.plus(CLOSE_TIMEOUT).plus(TRACING_FLUSH_TIMEOUT);

  private final Vertx vertx;
  private final GatewayConfig config;
  private final ReadinessState readiness;
  private final String apiDeployment;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final AtomicBoolean draining = new AtomicBoolean();
  private final JvmGcMetrics gcMetrics;
  private final DrainTally drainTally;
  /** The tracing SDK this gateway built (not one a caller passed): shut down, so flushed, on close. */
  private volatile Optional<OpenTelemetrySdk> ownTracing = Optional.empty();

  private Idemgate(Vertx vertx, GatewayConfig config, ReadinessState readiness, String apiDeployment, JvmGcMetrics gcMetrics,
      DrainTally drainTally) {
    this.vertx = vertx;
    this.drainTally = drainTally;
    this.config = config;
    this.readiness = readiness;
    this.apiDeployment = apiDeployment;
    this.gcMetrics = gcMetrics;
  }

  /** As {@link #start(GatewayConfig, ReconciliationSettings)}, with the reconciliation settings of this process's environment. */
  public static Idemgate start(GatewayConfig config) {
    return start(config, ReconciliationSettings.fromEnvironment(System.getenv()));
  }

  /** Migrates the schema, checks Redis, deploys everything; fails with {@link StartupFailure} naming what is wrong. */
  public static Idemgate start(GatewayConfig config, ReconciliationSettings reconciliation) {
    Optional<OpenTelemetrySdk> tracing = Tracing.fromConfig(config);
    try {
      Idemgate gateway = start(config, reconciliation, tracing.map(OpenTelemetry.class::cast));
      gateway.ownTracing = tracing;
      return gateway;
    } catch (RuntimeException e) {
      tracing.ifPresent(OpenTelemetrySdk::close);
      throw e;
    }
  }

  /** Starts with a given OpenTelemetry (tests pass one that records spans in memory). */
  public static Idemgate start(GatewayConfig config, Optional<OpenTelemetry> openTelemetry) {
    return start(config, ReconciliationSettings.fromEnvironment(System.getenv()), openTelemetry);
  }

  private static Idemgate start(GatewayConfig config, ReconciliationSettings reconciliation,
      Optional<OpenTelemetry> openTelemetry) {
    MerchantKeys merchantKeys;
    try {
      merchantKeys = MerchantKeys.load(config);
    } catch (MerchantKeys.KeyFileUnusable e) {
      throw new StartupFailure(e.getMessage());
    }
    merchantKeys.warnOfKeylessMerchants(config);
    CredentialScanner credentials = new CredentialScanner(merchantKeys, config.adminToken());
    int applied = Migrations.migrate(config.pgUrl());
    if (applied > 0) {
      log.info("schema migrated: {} migration(s) applied", applied);
    }
    ServerLimits.check(config);
    VertxBuilder builder = Vertx.builder();
    MeterRegistry registry;
    Optional<PrometheusMeterRegistry> prometheus;
    JvmGcMetrics gcMetrics = null;
    if (config.metricsEnabled()) {
      PrometheusMeterRegistry p = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
      new JvmMemoryMetrics().bindTo(p);
      new JvmThreadMetrics().bindTo(p);
      new ProcessorMetrics().bindTo(p);
      gcMetrics = new JvmGcMetrics();
      gcMetrics.bindTo(p);
      builder.withMetrics(new MicrometerMetricsFactory(p));
      registry = p;
      prometheus = Optional.of(p);
    } else {
      registry = new CompositeMeterRegistry(); // no registries behind it: every meter is a no-op
      prometheus = Optional.empty();
    }
    // Linux epoll instead of the JDK's NIO selector: +13-29 % fresh payments/s on the 2-core box
    // (4,730 and 5,350 against 4,200 and 4,140, runs in turn); replays the same within noise.
    VertxOptions options = new VertxOptions().setPreferNativeTransport(true);
    if (config.metricsEnabled()) {
      // Only the Vert.x meters the dashboard reads: the pools. Per-connection byte counters of
      // every Redis and PostgreSQL socket (NET_CLIENT) and per-message event bus meters cost more
      // than half the fresh-key throughput when on (measured in the bench). The Redis and
      // PostgreSQL clients' own meters ("redis", "sql": a timer per command, untagged, so every
      // connection's gauge but the first was ignored with a warning) are off too. The HTTP server's
      // meters are looked up in the registry five times per request, 8.5 % of the gateway's CPU
      // on replays (profiled): GatewayMetrics keeps the two that matter (connections, request
      // latency by outcome) with meters made once.
      options.setMetricsOptions(new MicrometerMetricsOptions().setEnabled(true)
          .addDisabledMetricsCategory(MetricsDomain.HTTP_SERVER)
          .addDisabledMetricsCategory(MetricsDomain.NET_CLIENT)
          .addDisabledMetricsCategory(MetricsDomain.NET_SERVER)
          .addDisabledMetricsCategory(MetricsDomain.HTTP_CLIENT)
          .addDisabledMetricsCategory(MetricsDomain.EVENT_BUS)
          .addDisabledMetricsCategory(MetricsDomain.DATAGRAM_SOCKET)
          .addDisabledMetricsCategory(MetricsDomain.VERTICLES)
          .addDisabledMetricsCategory("redis")
          .addDisabledMetricsCategory("sql"));
    }
    openTelemetry.ifPresent(otel -> {
      options.setTracingOptions(new OpenTelemetryOptions());
      builder.withTracer(new PathOnlyTracing(new OpenTelemetryTracingFactory(otel), credentials));
    });
    GatewayMetrics metrics = new GatewayMetrics(registry,
        new Tracing(openTelemetry.orElse(io.opentelemetry.api.OpenTelemetry.noop())));
    Vertx vertx = builder.with(options).build();
    if (!vertx.isNativeTransportEnabled()) {
      log.info("native transport unavailable, using the JDK's NIO: {}", String.valueOf(vertx.unavailableNativeTransportCause()));
    }
    try {
      vertx.eventBus().registerCodec(new LocalCodec());
      await(redisAtStart(vertx, config), "Redis at " + GatewayConfig.maskPassword(config.redisUrl()) + " cannot be reached");
      ReadinessState readiness = new ReadinessState();
      ReplayCache replays = new ReplayCache(config.replayCacheEntries());
      metrics.watchReplayCache(replays::estimatedSize);
      metrics.watchApiKeys(merchantKeys);
      SharedIdempotencyStore sharedStore = new SharedIdempotencyStore();
      MerchantRateLimiter rateLimiter = new MerchantRateLimiter(config::rateLimitFor);
      DrainTally drainTally = new DrainTally();
      String api = await(vertx.deployVerticle(new ProviderVerticle(config, registry))
          .compose(id -> vertx.deployVerticle(() -> new ApiVerticle(config, metrics, replays, sharedStore, merchantKeys, rateLimiter,
              drainTally),
              new DeploymentOptions().setInstances(config.effectiveApiInstances())))
          .compose(id -> vertx.deployVerticle(new RecoveryVerticle(config, registry))
              .compose(r -> vertx.deployVerticle(new ManagementVerticle(config, reconciliation, prometheus, registry, readiness,
                  credentials)))
              .compose(m -> vertx.deployVerticle(new JudgeSyncVerticle(config, registry)))
              // Last, so that the verticles before keep the event loops they always had.
              .compose(j -> config.rateLimited()
                  ? vertx.deployVerticle(new RateLimitSyncVerticle(config, rateLimiter, registry)) : Future.succeededFuture(j))
              .map(m -> id)),
          "the gateway could not start listening on ports " + config.httpPort() + "/" + config.managementPort());
      merchantKeys.reloadEvery(vertx, config.apiKeysReloadInterval());
      log.info("idemgate ready: api on port {}, management on port {}, {}", config.httpPort(), config.managementPort(), config);
      if (config.provider().equals("simulator")) {
        log.warn("provider is the in-process simulator: payments are answered as if charged but no money moves; "
            + "set provider: http and provider_url for a real acquirer");
      }
      return new Idemgate(vertx, config, readiness, api, gcMetrics, drainTally);
    } catch (RuntimeException e) {
      vertx.close();
      throw e;
    }
  }

  /**
   * PING through a client like the gateway's. A Redis that accepts the connection and never answers
   * fails it with "no answer within N s", N being whichever ends the wait first: the client's
   * read-idle close (RedisClients#readIdle, 3 s with the default redis_timeout), which Redis's client
   * reports as a bare CONNECTION_CLOSED, or the check's own deadline, whose message is Vert.x's
   * "Timeout 5000 (ms) fired". Both stay a TimeoutException, so unreachable() still tolerates them.
   */
  static Future<Void> checkRedis(Vertx vertx, GatewayConfig config) {
    Redis redis = Redis.createClient(vertx, RedisClients.options(config, 1, "start-up-check"));
    long started = System.nanoTime();
    Duration readIdle = RedisClients.readIdle(config);
    return redis.send(Request.cmd(Command.PING)).timeout(REDIS_CHECK_SECONDS, TimeUnit.SECONDS).<Void>mapEmpty()
        .recover(failure -> {
          if (failure instanceof TimeoutException) {
            return Future.failedFuture(noAnswerWithin(Duration.ofSeconds(REDIS_CHECK_SECONDS), failure));
          }
          // Closed with nothing read for the read-idle time: silence, whoever closed it. A connection
          // the server closes sooner (a proxy with nothing behind it) keeps its own words.
          boolean closedSilent = failure instanceof Response && String.valueOf(failure.getMessage()).equals("CONNECTION_CLOSED")
              && System.nanoTime() - started >= readIdle.toNanos();
          return Future.failedFuture(closedSilent ? noAnswerWithin(readIdle, failure) : failure);
        })
        .recover(failure -> Future.failedFuture(namingTheEndpoints(config, failure)))
        .eventually(redis::close);
  }

  /**
   * A Sentinel or Cluster client's failure with the endpoints it was given: tried one after
   * another, silent ones end the check's wait with no word of which, and a connection closed
   * unanswered is listed as a bare {@code CONNECTION_CLOSED}. Passwords masked. A standalone
   * client's failures name their one URL's host already.
   */
  private static Throwable namingTheEndpoints(GatewayConfig config, Throwable failure) {
    String mode = config.redisMode();
    if (mode.equals("standalone")) {
      return failure;
    }
    String asked = (mode.equals("sentinel") ? "the sentinels " : "the cluster seeds ")
        + String.join(", ", config.redisUrls().stream().map(GatewayConfig::maskPassword).toList());
    String message = failure.getMessage() == null ? failure.getClass().getSimpleName() : failure.getMessage();
    Throwable named;
    if (failure instanceof TimeoutException) {
      named = new TimeoutException(message + " from " + asked);
    } else {
      // After the first line: the endpoints' own lines of a failure that lists them, which
      // unreachable() reads, unchanged.
      int firstLineEnd = message.indexOf('\n') < 0 ? message.length() : message.indexOf('\n');
      named = new RedisEndpointsFailure(message.substring(0, firstLineEnd).stripTrailing() + " (" + asked + ")"
          + message.substring(firstLineEnd));
    }
    named.initCause(failure);
    return named;
  }

  /** A Sentinel or Cluster client's failure at the start-up check, its message naming the endpoints. */
  static final class RedisEndpointsFailure extends Exception {
    RedisEndpointsFailure(String message) {
      super(message);
    }
  }

  private static TimeoutException noAnswerWithin(Duration wait, Throwable cause) {
    String seconds = wait.toMillis() % 1000 == 0 ? String.valueOf(wait.toSeconds())
        : java.math.BigDecimal.valueOf(wait.toMillis(), 3).stripTrailingZeros().toPlainString();
    TimeoutException noAnswer = new TimeoutException("no answer within " + seconds + " s");
    noAnswer.initCause(cause);
    return noAnswer;
  }

  /**
   * {@link #checkRedis}, whose failure stops start-up, but for a Redis that cannot be reached under
   * {@code redis_at_start: optional}: then a WARN, and the gateway starts DEGRADED. Nothing else
   * needs Redis to start: every client connects on first use, and the gate's breaker, the pipelines
   * and the notifier try again by themselves, so Redis is taken up once it answers.
   */
  static Future<Void> redisAtStart(Vertx vertx, GatewayConfig config) {
    return checkRedis(vertx, config).recover(failure -> {
      if (!config.redisOptionalAtStart() || !unreachable(failure)) {
        return Future.failedFuture(failure);
      }
      log.warn("Redis at {} cannot be reached: {}; starting DEGRADED (redis_at_start: optional): payments are decided "
          + "in PostgreSQL alone until Redis answers", GatewayConfig.maskPassword(config.redisUrl()), oneLine(failure));
      return Future.succeededFuture();
    });
  }

  /**
   * Whether a failed {@link #checkRedis} says only that Redis is not there (yet): the connection
   * refused or timed out, no route to it, its host name not resolving, no answer within the check's
   * deadline or the connection closed without one, the connection reset before an answer (a
   * service-mesh sidecar or TCP load balancer with no Redis behind it, a Redis killed mid-accept),
   * or a server still loading its data. Anything else is not: an answer that proves a
   * misconfiguration (a password refused, a database it lacks, a TLS certificate not trusted, no
   * sentinel). A reset cannot be told from a {@code redis://} URL for a TLS-only port (that server
   * resets too, sending nothing), which is therefore a WARN under {@code optional}, as a mistyped
   * host name is. Over {@code rediss://}, a reset or close mid-handshake fails as a bare closed
   * channel, as a plain Redis's silence does, so it stays a refusal. The Sentinel and Cluster
   * clients give one failure listing each endpoint's as a line of text ({@code - <exception
   * class>: <message>}): unreachable only when every endpoint's is.
   */
  static boolean unreachable(Throwable failure) {
    String message = failure.getMessage() == null ? "" : failure.getMessage();
    if (message.startsWith(ALL_ENDPOINTS_FAILED) || message.startsWith(ALL_NODES_FAILED)) {
      List<String> endpoints = message.lines().map(String::strip).filter(line -> line.startsWith("- ")).toList();
      return !endpoints.isEmpty() && endpoints.stream().allMatch(line -> UNREACHABLE_LINE.matcher(line).lookingAt());
    }
    for (Throwable cause = failure; cause != null; cause = cause.getCause() == cause ? null : cause.getCause()) {
      if (cause instanceof ConnectException || cause instanceof NoRouteToHostException
          || cause instanceof UnknownHostException || cause instanceof TimeoutException
          || cause instanceof Response && NOT_THERE_YET.matcher(String.valueOf(cause.getMessage())).lookingAt()
          || CONNECTION_RESET.matcher(cause.toString()).lookingAt()) {
        return true;
      }
    }
    return false;
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

  /**
   * The drain's first step, at once: readiness fails and the {@code draining} line is logged; the
   * first call only. {@link #close} starts with it; a signal handler calls it before handing the
   * close to a thread of its own, so that the line comes before any about a later signal.
   */
  public void startDraining() {
    if (draining.compareAndSet(false, true)) {
      readiness.startDraining();
      log.info("draining: in-flight payments have {} ms to finish", config.drainTimeout().toMillis());
    }
  }

  /**
   * Graceful stop: readiness fails at once; the API servers stop accepting and give in-flight
   * payments up to {@code drain_timeout} to finish; then recovery, the provider and the clients
   * close. Safe to call twice.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    startDraining();
    long drainMs = config.drainTimeout().toMillis();
    try {
      vertx.undeploy(apiDeployment).toCompletionStage().toCompletableFuture()
          .get(drainMs + UNDEPLOY_MARGIN.toMillis(), TimeUnit.MILLISECONDS);
      warnIfDrainRanOut(drainMs);
      vertx.close().toCompletionStage().toCompletableFuture().get(CLOSE_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      log.info("idemgate stopped");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      log.warn("vert.x did not close cleanly: {}", e.toString());
      vertx.close();
    } finally {
      if (gcMetrics != null) {
        gcMetrics.close();
      }
      // Sends the spans still buffered, then stops its thread; a collector that does not answer
      // in time costs those spans, not the stop.
      ownTracing.ifPresent(sdk -> sdk.shutdown().join(TRACING_FLUSH_TIMEOUT.toSeconds(), TimeUnit.SECONDS));
    }
  }

  /**
   * One warning when the drain ended with payments still under way (their charges slower than
   * drain_timeout): the requests still waiting for them were closed unanswered. Before session 33
   * nothing said so, and their access lines read as if the clients had hung up.
   */
  private void warnIfDrainRanOut(long drainMs) {
    int cut = drainTally.paymentsCut();
    if (cut > 0) {
      log.warn("the drain ran out (drain_timeout {} ms) with {} still under way; requests still waiting were closed "
          + "unanswered (access log: status 499, outcome shutdown). The claims stand: once the lease and the takeover grace ({} s) "
          + "has passed, recovery on a running instance asks the provider and records the outcome, or frees the key if "
          + "the provider never saw the charge; until then a retry with the same key gets 409 idempotency_key_in_use",
          drainMs, cut == 1 ? "1 payment" : cut + " payments", config.lease().plus(config.takeoverGrace()).toSeconds());
    }
  }

  static <T> T await(Future<T> future, String whatFailed) {
    try {
      return future.toCompletionStage().toCompletableFuture().get(STARTUP_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new StartupFailure(whatFailed + ": interrupted");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause() == null ? e : e.getCause();
      throw new StartupFailure(whatFailed + ": " + oneLine(cause));
    } catch (TimeoutException e) {
      throw new StartupFailure(whatFailed + ": no answer in " + STARTUP_TIMEOUT.toSeconds() + "s");
    }
  }

  /**
   * The message of a start-up failure's cause on one line. The Sentinel and Cluster clients of
   * Vert.x Redis list each endpoint's failure on a line of its own under "Cannot connect to any of
   * the provided endpoints", some as {@code - <exception class>: <message>}: those become
   * {@code first line: one; two}, without the class names.
   */
  static String oneLine(Throwable cause) {
    String message = cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
    List<String> lines = message.lines().map(String::strip)
        .map(line -> line.replaceFirst("^- ", "").replaceFirst("^([a-z][\\w$]*\\.)+[A-Z][\\w$]*(Exception|Error): ", "").strip())
        .filter(line -> !line.isEmpty())
        .toList();
    if (lines.isEmpty()) {
      return cause.getClass().getSimpleName();
    }
    return lines.size() == 1 ? lines.get(0) : lines.get(0) + ": " + String.join("; ", lines.subList(1, lines.size()));
  }

  /** Start-up could not complete; the message is one line for the operator. */
  public static final class StartupFailure extends RuntimeException {
    public StartupFailure(String message) {
      super(message);
    }
  }
}
