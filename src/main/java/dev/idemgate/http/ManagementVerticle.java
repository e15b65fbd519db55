package dev.idemgate.http;

import static dev.idemgate.recovery.RecoveryVerticle.WITHOUT_ACQUIRER;

import dev.idemgate.anomaly.AnomalyMonitor;
import dev.idemgate.anomaly.AnomalyRoutes;
import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.observability.LoggableRequest;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.payment.PaymentRequestParser;
import dev.idemgate.provider.HttpProvider;
import dev.idemgate.provider.ProviderClient;
import dev.idemgate.reconciliation.ReconciliationSettings;
import dev.idemgate.recovery.RecoveryVerticle;
import dev.idemgate.storage.Postgres;
import dev.idemgate.storage.RedisClients;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import io.vertx.sqlclient.Pool;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The management port (DESIGN §3): liveness, readiness, Prometheus metrics and the admin API.
 * Readiness fails only when PostgreSQL, the source of truth, is unusable or the instance is
 * draining; Redis down, or up but taking no writes, is reported as DEGRADED and keeps the instance
 * in service, because the gateway stays exactly-once through PostgreSQL alone.
 */
public final class ManagementVerticle extends VerticleBase {
  private static final long CHECK_TIMEOUT_MS = 1_000;
  /** True when the session asked may write: not in recovery, not read-only. */
  static final String WRITABLE_CHECK =
      "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'";
  /**
   * Answers only where a write would be taken, and writes nothing: a script declared with a shebang
   * and without the {@code no-writes} flag is refused as a write (Redis 7) by a replica (READONLY:
   * the old master a failover left behind the address) or a Redis past its maxmemory (OOM), both of
   * which answer PING but refuse every claim of the gate. Needs only EVAL, which the gate uses anyway
   * (ROLE and INFO are admin commands a least-privilege ACL user may lack).
   */
  static final String WRITE_PROBE = "#!lua\nreturn 1";
  static final int IDLE_TIMEOUT_SECONDS = 60;
  /**
   * The longest an admin body may take to arrive: {@code request_body_timeout}, at most half the idle
   * timeout, so that a body that stops gets its 408 before the idle timeout closes the connection
   * without an answer (which the access line could only log as a client that went away, 499).
   */
  static final long MAX_BODY_TIMEOUT_MS = IDLE_TIMEOUT_SECONDS * 1_000L / 2;
  /**
   * The longest verdict on a pending payment read. One needs a few hundred bytes; this is the cap of
   * every other body here, which the 413's text names.
   */
  private static final int MAX_VERDICT_BYTES = 64 * 1024;
  /** Records {@code /admin/pending} lists when not told ({@code ?limit=}), and at most. */
  private static final int PENDING_LISTED = 100;
  private static final int MAX_PENDING_LISTED = 1_000;
  /** Where {@link #requireAdmin} leaves what it made of the admin token, for the access line. */
  private static final String ADMIN_TOKEN_CHECK = "idemgate.adminToken";

  /** What the admin token check made of a request, as its access line says it. */
  private enum AdminToken { ACCEPTED, REFUSED, MISSING, NOT_CHECKED }

  private final GatewayConfig config;
  private final Optional<PrometheusMeterRegistry> registry;
  private final MeterRegistry meters;
  private final ReadinessState readiness;
  private final ReconciliationSettings reconciliation;
  /** What an access line's path or method may not hold: the admin token, the API keys in force. */
  private final CredentialScanner credentials;
  private Pool pool;
  private Redis redis;
  private HttpServer server;
  private ProviderClient provider;
  /** Admin requests whose body is not in yet; see {@link #limitBodyTime}. */
  private Deadlines<RoutingContext> bodyDeadlines;
  private long bodyTimeoutMs;
  private long bodySweepTimer = -1;
  /**
   * What the last readiness check found, 1 taking writes or 0 not, as {@code idemgate_dependency_up}: an
   * instance PostgreSQL does not answer is out of the Service and its request counters stand still,
   * so only this says, while every instance is out, that the database is why. 1 until the first
   * check (start-up reached both).
   */
  private final AtomicInteger postgresReached = new AtomicInteger(1);
  private final AtomicInteger redisReached = new AtomicInteger(1);

  /**
   * @param reconciliation read and checked before start-up (Main), not here: a bad one failed the
   *     deployment after the migrations, as a port that could not be listened on
   * @param registry the Prometheus registry, empty when metrics are off ({@code /metrics} then answers 404)
   */
  public ManagementVerticle(GatewayConfig config, ReconciliationSettings reconciliation,
      Optional<PrometheusMeterRegistry> registry, MeterRegistry meters, ReadinessState readiness,
      CredentialScanner credentials) {
    this.reconciliation = reconciliation;
    this.credentials = credentials;
    this.meters = meters;
    this.config = config;
    this.registry = registry;
    this.readiness = readiness;
  }

  @Override
  public Future<?> start() {
    pool = Postgres.pool(vertx, config, 2, "management");
    redis = Redis.createClient(vertx, RedisClients.options(config, 2, "management"));
    provider = new ProviderClient(vertx.eventBus(), config);
    bodyTimeoutMs = Math.min(config.requestBodyTimeout().toMillis(), MAX_BODY_TIMEOUT_MS);
    bodyDeadlines = new Deadlines<>(bodyTimeoutMs);
    UndeliveredAnswers undelivered = new UndeliveredAnswers(bodyTimeoutMs, UndeliveredAnswers.MANAGEMENT_MAX_HELD);
    bodySweepTimer = vertx.setPeriodic(Deadlines.sweepIntervalMillis(bodyTimeoutMs), id -> {
      long now = System.nanoTime();
      bodyDeadlines.sweep(now, this::bodyTimedOut);
      undelivered.sweep(now);
    });
    for (var dependency : Map.of("postgres", postgresReached, "redis", redisReached).entrySet()) {
      Gauge.builder("idemgate.dependency.up", dependency.getValue(), AtomicInteger::get).tag("dependency", dependency.getKey())
          .description("1 when this instance's last readiness check found the dependency taking writes, else 0")
          .register(meters);
    }
    Router router = Router.router(vertx);
    // HTTP/2 answers a client does not take are reset, as on the API port: /health and /metrics need
    // no token, and a scrape held on a window of 0 would keep a hundred KB each.
    router.route().handler(ctx -> {
      undelivered.watch(ctx);
      RequestIds.assign(ctx);
    });
    // GET and HEAD (RFC 9110 9.1: every server takes both; some load balancers and uptime checks probe
    // with HEAD, which got 405 before session 31).
    router.route("/health/live").method(HttpMethod.GET).method(HttpMethod.HEAD)
        .handler(ctx -> json(ctx, 200, new JsonObject().put("status", "UP")));
    router.route("/health/ready").method(HttpMethod.GET).method(HttpMethod.HEAD).handler(this::ready);
    registry.ifPresent(prometheus -> router.route("/metrics").method(HttpMethod.GET).method(HttpMethod.HEAD)
        .handler(ctx -> {
          ctx.response().putHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
          HeadAnswers.end(ctx.request(), prometheus.scrape());
        }));
    // Admin requests act on money, so each one, refused ones too, gets an access line: the audit
    // trail. Health probes and scrapes, every few seconds from the kubelet and Prometheus, get none.
    router.route("/admin/*").handler(ctx -> {
      logAccess(ctx, credentials);
      limitBodyTime(ctx);
      ctx.next();
    }).handler(this::requireAdmin);
    AnomalyRoutes.mount(router, AnomalyMonitor.of(vertx, config, meters), pool);
    dev.idemgate.reconciliation.ReconciliationRoutes.mount(router, vertx, config, reconciliation, bodyTimeoutMs, credentials);
    // Each admin route names the query parameters it takes: any other is refused, never ignored
    // (QueryParameters).
    router.get("/admin/simulator/charges").handler(QueryParameters.only("idempotency_key", "merchant", "key"))
        .handler(this::simulatorCharges);
    router.get("/admin/pending").handler(QueryParameters.only("limit", "merchant_id", "payment_id")).handler(this::unresolved);
    // Two routes, as for payments: Vert.x Web runs a route's body handler before its other handlers,
    // and the query and the body's headers are checked before it is read.
    router.post("/admin/pending/:payment_id/resolve").handler(QueryParameters.none()).handler(ManagementVerticle::requireJson);
    router.post("/admin/pending/:payment_id/resolve")
        .handler(BodyHandler.create(false).setBodyLimit(MAX_VERDICT_BYTES)).handler(this::resolvePending);
    router.route().failureHandler(Problems::handleFailure);
    // 400: a path the router cannot decode (a bad percent-encoding) reaches no route, so an admin
    // path gets its access line here.
    router.errorHandler(400, ctx -> {
      if (isAdminPath(ctx.request().path())) {
        logAccess(ctx, credentials);
      }
      Problems.undecodablePath(ctx);
    });
    router.errorHandler(404, Problems::handleFailure);
    router.errorHandler(405, Problems.methodNotAllowed(router));
    // A connection with nothing read or written for a minute is closed: a client that stops reading
    // a reconciliation report lets go of its file, and a stalled upload of its worker. A request
    // whose target or Host is malformed, or whose head is not HTTP, is refused as on the API port,
    // before routing; an admin one still gets its access line (logRefused). Probes and scrapes send
    // one Host (the kubelet its pod's address and port), so they pass. No WebSocket compression, as
    // on the API port: its handler resets an HTTP/1.1 connection with 129 pipelined requests waiting.
    // A client's reset of an HTTP/1.1 connection reaches Vert.x as its close, as on the API port
    // (ClientResets).
    server = vertx.createHttpServer(new HttpServerOptions().setIdleTimeout(IDLE_TIMEOUT_SECONDS)
        .setIdleTimeoutUnit(TimeUnit.SECONDS).setPerFrameWebSocketCompressionSupported(false)
        .setPerMessageWebSocketCompressionSupported(false)).requestHandler(request -> {
          long arrived = System.nanoTime();
          // Date on every answer, as on the API port (RFC 9110 6.6.1); formatted per request, as this
          // port serves probes and scrapes, not payments.
          request.response().headers().add(HttpHeaders.DATE, HttpDates.format(Instant.now()));
          if (Problems.refusedMalformed(request)) {
            logRefused(request, arrived, credentials);
          } else {
            router.handle(request);
          }
        }).invalidRequestHandler(request -> {
          long arrived = System.nanoTime();
          Problems.invalidRequest(request, HttpServerOptions.DEFAULT_MAX_HEADER_SIZE);
          logRefused(request, arrived, credentials);
        }).connectionHandler(ClientResets::install);
    return server.listen(config.managementPort());
  }

  @Override
  public Future<?> stop() {
    vertx.cancelTimer(bodySweepTimer);
    Future<Void> http = server == null ? Future.succeededFuture() : server.close();
    return http.eventually(() -> Future.join(pool.close(), redis.close()));
  }

  private void ready(RoutingContext ctx) {
    // A PostgreSQL that answers but takes no writes (a standby, such as the old primary a failover
    // left behind the same address, or default_transaction_read_only) takes no payment: every
    // claim would be 503 store_unavailable, so it counts as down, not merely reached. A session
    // found read-only stays so for its life, though writes come back (default_transaction_read_only
    // is read when a session starts): its connection is left, not given back to the pool, so the
    // next check asks a new session (Postgres.leave). Through withConnection for that handle on the
    // connection; the same single statement and round trip as a query of the pool.
    Future<Void> pg = pool.withConnection(connection -> connection.query(WRITABLE_CHECK).execute().<Void>compose(rows -> {
          if (rows.iterator().next().getBoolean(0)) {
            return Future.succeededFuture();
          }
          Postgres.leave(connection);
          return Future.failedFuture("PostgreSQL takes no writes");
        }))
        .timeout(CHECK_TIMEOUT_MS, TimeUnit.MILLISECONDS);
    Future<Void> rd = redis.send(Request.cmd(Command.EVAL).arg(WRITE_PROBE).arg(0)).<Void>mapEmpty()
        .timeout(CHECK_TIMEOUT_MS, TimeUnit.MILLISECONDS);
    Future.join(pg, rd).onComplete(done -> {
      boolean pgUp = pg.succeeded();
      boolean redisUp = rd.succeeded();
      postgresReached.set(pgUp ? 1 : 0);
      redisReached.set(redisUp ? 1 : 0);
      String status = readiness.draining() ? "DRAINING" : !pgUp ? "DOWN" : redisUp ? "UP" : "DEGRADED";
      JsonObject body = new JsonObject().put("status", status)
          .put("checks", new JsonObject().put("postgres", pgUp ? "UP" : "DOWN").put("redis", redisUp ? "UP" : "DOWN"));
      json(ctx, pgUp && !readiness.draining() ? 200 : 503, body);
    });
  }

  /**
   * Writes the access line of an admin request once it ended: request id, method, path, status,
   * latency, remote address and what became of the admin token. Never the token or the body, and
   * not the query: {@code /admin/simulator/charges?merchant=&key=} carries a client's idempotency
   * key, which the API port logs only as a hash.
   */
  private static void logAccess(RoutingContext ctx, CredentialScanner credentials) {
    long start = System.nanoTime();
    SocketAddress remote = ctx.request().remoteAddress();
    ctx.addEndHandler(done -> AccessLog.line(ctx, "path", AccessLog.loggablePath(ctx.request(), credentials),
        AccessLog.clientClosed(ctx, done), System.nanoTime() - start, credentials)
        .addKeyValue("remote_address", remote == null ? null : remote.hostAddress())
        .addKeyValue("admin_token", ctx.get(ADMIN_TOKEN_CHECK, AdminToken.NOT_CHECKED).name().toLowerCase(Locale.ROOT))
        .log("request"));
  }

  /**
   * The access line of a request answered before routing ({@link Problems#refusedMalformed},
   * {@link Problems#invalidRequest}), when its path is an admin one: the same fields as
   * {@link #logAccess}, its token never checked. Before session 30 such a request was answered with
   * no line, unlike every other admin request. The path is cut at a fragment as at the query, which
   * the line never holds. A request line too long to be read has no path to tell, and no line.
   */
  private static void logRefused(HttpServerRequest request, long arrived, CredentialScanner credentials) {
    String path = AccessLog.withoutFragment(request.path());
    if (!isAdminPath(path)) {
      return;
    }
    SocketAddress remote = request.remoteAddress();
    AccessLog.line(request, request.response().headers().get("X-Request-Id"), "path",
            LoggableRequest.path(path, credentials, BearerTokens.of(request)), !request.response().ended(),
            System.nanoTime() - arrived, credentials)
        .addKeyValue("remote_address", remote == null ? null : remote.hostAddress())
        .addKeyValue("admin_token", AdminToken.NOT_CHECKED.name().toLowerCase(Locale.ROOT))
        .log("request");
  }

  /** Whether a request path is the admin API's: those requests get an access line, probes and scrapes none. */
  private static boolean isAdminPath(String path) {
    return path != null && (path.startsWith("/admin/") || path.equals("/admin"));
  }

  /**
   * Starts the body deadline of an admin request that has a body still to come, as the API port
   * does for payments: a client that stops sending mid-body gets 408 and its connection closed
   * ({@link #bodyTimedOut}), and its access line says 408, what the server did, instead of the 499
   * of a connection the idle timeout cut without an answer. The settlement upload is left out: its
   * body, up to {@code max_upload_mib}, may rightly take longer than the deadline, so its own limit
   * is on silence, the same time with nothing of its body arriving (SettlementUpload).
   *
   * <p>Over HTTP/2 whether a body follows is known only once the request's HEADERS frame is read
   * through: Vert.x 5.0.7 runs the router while it reads that frame and only then acts on its
   * END_STREAM flag, so {@code isEnded()} is still false here for a GET, and true right after. The
   * decision therefore waits for a task after the frame: a stream ended by its HEADERS (any admin
   * GET) never gets a deadline, which would otherwise stay in the list until the response ends.
   */
  private void limitBodyTime(RoutingContext ctx) {
    HttpServerRequest request = ctx.request();
    if (request.isEnded() || isSettlementUpload(ctx)) {
      return;
    }
    if (request.version() == HttpVersion.HTTP_2) {
      context.runOnContext(frameRead -> {
        if (!request.isEnded() && !ctx.response().ended() && !ctx.response().closed()) {
          startBodyDeadline(ctx);
        }
      });
    } else if (announcesBody(request)) {
      startBodyDeadline(ctx);
    }
  }

  private void startBodyDeadline(RoutingContext ctx) {
    Deadlines<RoutingContext>.Waiting waiting = bodyDeadlines.add(ctx, System.nanoTime());
    ctx.addEndHandler(done -> waiting.done());
  }

  /**
   * Whether an HTTP/1.1 request's body follows its head: only a Content-Length above 0 or a
   * Transfer-Encoding says so. A request with neither (a GET) has none to wait for, though its end
   * may not have been read yet when the route starts.
   */
  private static boolean announcesBody(HttpServerRequest request) {
    String length = request.getHeader("Content-Length");
    return request.getHeader("Transfer-Encoding") != null || length != null && !length.matches("0+");
  }

  /** How many admin requests wait for their body now, read on this verticle's event loop (for tests). */
  Future<Integer> bodiesAwaited() {
    Promise<Integer> size = Promise.promise();
    context.runOnContext(v -> size.complete(bodyDeadlines.size()));
    return size.future();
  }

  private static boolean isSettlementUpload(RoutingContext ctx) {
    String path = ctx.normalizedPath();
    return ctx.request().method() == HttpMethod.POST
        && (path.equals("/admin/reconciliations") || path.equals("/admin/reconciliations/"));
  }

  /**
   * An admin body still not in {@code bodyTimeoutMs} after its head. A request whose body did
   * arrive, or that was answered, is left alone: each later step has a deadline of its own.
   */
  private void bodyTimedOut(RoutingContext ctx) {
    if (ctx.request().isEnded() || ctx.response().headWritten() || ctx.response().closed()) {
      return;
    }
    Problems.sendLeavingBodyUnread(ctx, new ApiProblem(ErrorCode.REQUEST_TIMEOUT, "the request body did not arrive within "
        + bodyTimeoutMs + " ms of its headers; nothing was done"));
  }

  private void requireAdmin(RoutingContext ctx) {
    String presented = BearerTokens.of(ctx);
    AdminToken check = presented == null ? AdminToken.MISSING : config.adminToken()
        .filter(token -> MessageDigest.isEqual(presented.getBytes(StandardCharsets.UTF_8), token.getBytes(StandardCharsets.UTF_8)))
        .isPresent() ? AdminToken.ACCEPTED : AdminToken.REFUSED;
    ctx.put(ADMIN_TOKEN_CHECK, check);
    if (config.adminToken().isEmpty()) {
      Problems.send(ctx, new ApiProblem(ErrorCode.UNAUTHORIZED, "admin endpoints are closed until IDEMGATE_ADMIN_TOKEN is set"));
      return;
    }
    if (check != AdminToken.ACCEPTED) {
      ctx.response().putHeader("WWW-Authenticate", "Bearer");
      Problems.send(ctx, new ApiProblem(ErrorCode.UNAUTHORIZED, "send Authorization: Bearer <admin token>"));
      return;
    }
    ctx.next();
  }

  /**
   * The simulator's charge log for one provider key ({@code ?idempotency_key=}), or for a client
   * key of a merchant ({@code ?merchant=&key=}, first generation), in the acquirer's shape. The
   * client key is read as the API reads its header, so its quoted form names the same key; before,
   * {@code key="abc"} was hashed quotes and all and answered {@code "requests":0} for a charged key.
   */
  private void simulatorCharges(RoutingContext ctx) {
    String providerKey = ctx.queryParams().get("idempotency_key");
    String merchant = ctx.queryParams().get("merchant");
    String key = ctx.queryParams().get("key");
    if (providerKey != null && (merchant != null || key != null)) {
      // Which was meant is a guess: the provider key was looked up, and merchant= and key= ignored.
      Problems.send(ctx, new ApiProblem(ErrorCode.INVALID_REQUEST,
          "give idempotency_key=<provider key> alone, or merchant= and key=, not both"));
      return;
    }
    if (merchant != null && merchant.isEmpty()) {
      // A provider key of no merchant, which no charge has: it answered "requests": 0.
      Problems.send(ctx, new ApiProblem(ErrorCode.INVALID_REQUEST, "merchant: the merchant id the key was sent under, not empty"));
      return;
    }
    if (providerKey == null && merchant != null && key != null) {
      IdempotencyKey clientKey = IdempotencyKey.parse(key).orElse(null);
      if (clientKey == null) {
        Problems.send(ctx, new ApiProblem(ErrorCode.INVALID_REQUEST,
            "key: an Idempotency-Key as the client sent it, 1-255 visible ASCII characters, bare or as a quoted string"));
        return;
      }
      providerKey = ProviderKeys.of(merchant, clientKey.value());
    }
    if (providerKey == null || providerKey.isBlank()) {
      Problems.send(ctx, new ApiProblem(ErrorCode.INVALID_REQUEST, "give idempotency_key=<provider key>, or merchant= and key="));
      return;
    }
    provider.chargeLog(providerKey)
        .onSuccess(log -> json(ctx, 200, log))
        .onFailure(failure -> Problems.send(ctx, new ApiProblem(ErrorCode.NOT_FOUND,
            "the charge log is kept by the simulator provider only")));
  }

  /**
   * Records recovery has not resolved yet: pending ones, expired leases and claims it holds now, each
   * with its provider key (the key the acquirer knows the charge by) and never the client's raw key.
   */
  private void unresolved(RoutingContext ctx) {
    JsonObject query;
    try {
      query = new JsonObject()
          .put("limit", pendingLimit(ctx.queryParams().get("limit")))
          .put("merchant_id", listFilter(ctx, "merchant_id"))
          .put("payment_id", listFilter(ctx, "payment_id"));
    } catch (ApiProblem refused) {
      Problems.send(ctx, refused);
      return;
    }
    vertx.eventBus().<JsonObject>request(RecoveryVerticle.UNRESOLVED, query)
        .onSuccess(reply -> json(ctx, 200, reply.body()))
        .onFailure(failure -> Problems.send(ctx, new ApiProblem(ErrorCode.STORE_UNAVAILABLE,
            RecoveryVerticle.STORE_UNAVAILABLE, null, 2)));
  }

  /** {@code ?limit=}: 1 to {@value #MAX_PENDING_LISTED}, {@value #PENDING_LISTED} when absent. */
  private static int pendingLimit(String value) {
    if (value == null) {
      return PENDING_LISTED;
    }
    int limit;
    try {
      limit = Integer.parseInt(value);
    } catch (NumberFormatException e) {
      limit = 0;
    }
    if (limit < 1 || limit > MAX_PENDING_LISTED) {
      throw new ApiProblem(ErrorCode.INVALID_REQUEST, "limit: a whole number from 1 to " + MAX_PENDING_LISTED);
    }
    return limit;
  }

  /** An optional exact-match filter of {@code /admin/pending}: absent, or 1 to 255 visible characters. */
  private static String listFilter(RoutingContext ctx, String name) {
    String value = ctx.queryParams().get(name);
    if (value != null && (value.isEmpty() || value.length() > 255 || !value.chars().allMatch(c -> c > 0x20 && c < 0x7f))) {
      throw new ApiProblem(ErrorCode.INVALID_REQUEST, name + ": 1 to 255 visible ASCII characters, or leave it out");
    }
    return value;
  }

  /** A verdict is JSON, declared as such like a payment's body (415 otherwise), before an action that cannot be undone. */
  private static void requireJson(RoutingContext ctx) {
    ApiProblem unreadable = Headers.unreadableJson(ctx.request());
    if (unreadable != null) {
      Problems.send(ctx, unreadable);
    } else {
      ctx.next();
    }
  }

  /**
   * An operator's verdict on a pending payment, read from the acquirer's own records (its dashboard,
   * its settlement file): {@code {"outcome": "succeeded", "provider_reference": "ch_…"}},
   * {@code {"outcome": "declined", "provider_reference": …, "decline_code": …}} (both optional), or
   * {@code {"outcome": "not_charged"}}, which frees the key so that a retry charges anew. Any of them
   * may add {@code "without_acquirer": true} for a payment the acquirer cannot be asked about.
   */
  private void resolvePending(RoutingContext ctx) {
    if (ctx.response().ended()) {
      // Answered 408 ("nothing was done") while the last bytes came in: the answer stands, so the
      // verdict is not applied behind it.
      return;
    }
    String paymentId = ctx.pathParam("payment_id");
    if (!PaymentJson.isPaymentId(paymentId)) {
      Problems.send(ctx, new ApiProblem(ErrorCode.NOT_FOUND, "no unsettled payment with this id"));
      return;
    }
    JsonObject verdict;
    try {
      verdict = verdict(ctx.body().buffer()).put("payment_id", paymentId);
    } catch (ApiProblem problem) {
      Problems.send(ctx, problem);
      return;
    }
    DeliveryOptions within = new DeliveryOptions().setSendTimeout(RecoveryVerticle.operatorAnswerWithin(config).toMillis());
    vertx.eventBus().<JsonObject>request(RecoveryVerticle.RESOLVE, verdict, within)
        .onSuccess(reply -> json(ctx, 200, reply.body()))
        .onFailure(failure -> {
          ReplyException reply = failure instanceof ReplyException e ? e : null;
          Problems.send(ctx, reply != null && reply.failureType() == ReplyFailure.TIMEOUT
              ? new ApiProblem(ErrorCode.STORE_UNAVAILABLE, "no answer in time: the verdict may or may not have been "
                  + "recorded; look at /admin/pending before sending it again", null, 5)
              : switch (reply == null ? 503 : reply.failureCode()) {
                case 404 -> new ApiProblem(ErrorCode.NOT_FOUND, failure.getMessage());
                case 409 -> new ApiProblem(ErrorCode.CONFLICT, failure.getMessage());
                case 502 -> new ApiProblem(ErrorCode.PROVIDER_UNAVAILABLE, failure.getMessage());
                // Recovery's text: "retry later", or, for a write that may land after all, "look first".
                case 503 -> new ApiProblem(ErrorCode.STORE_UNAVAILABLE, failure.getMessage(), null, 2);
                default -> new ApiProblem(ErrorCode.STORE_UNAVAILABLE, RecoveryVerticle.STORE_UNAVAILABLE, null, 2);
              });
        });
  }

  /** The shape of a verdict, which each refusal of one gives after naming its fault. */
  static final String VERDICT_SHAPE = "send {\"outcome\": \"succeeded\", \"provider_reference\": \"<the acquirer's charge id>\"}, "
      + "{\"outcome\": \"declined\"} (provider_reference and decline_code optional) or {\"outcome\": \"not_charged\"}; "
      + "each may add \"without_acquirer\": true";
  private static final List<String> OUTCOMES = List.of("succeeded", "declined", "not_charged");

  /**
   * The verdict's fields, checked: an outcome, and only the fields that outcome takes, each storable.
   * A refusal names its fault first (the body, the outcome, a member), then {@link #VERDICT_SHAPE}:
   * every refusal once gave only the shape, and an operator had to guess which part was wrong.
   */
  static JsonObject verdict(Buffer body) {
    // Strict, as for payments: a member named twice ({"outcome": "declined", "outcome": "not_charged"})
    // is refused, not read as its last value, before an action that cannot be undone.
    JsonObject json = PaymentRequestParser.strictObject(body);
    if (json == null) {
      throw badVerdict(PaymentRequestParser.whyNotOneObject(body));
    }
    if (json.getValue("outcome") == null) {
      throw badVerdict("outcome is missing");
    }
    if (!(json.getValue("outcome") instanceof String outcome && OUTCOMES.contains(outcome))) {
      throw badVerdict("outcome must be succeeded, declined or not_charged");
    }
    Set<String> allowed = switch (outcome) {
      case "succeeded" -> Set.of("outcome", "provider_reference", WITHOUT_ACQUIRER);
      case "declined" -> Set.of("outcome", "provider_reference", "decline_code", WITHOUT_ACQUIRER);
      default -> Set.of("outcome", WITHOUT_ACQUIRER);
    };
    List<String> notTaken = json.fieldNames().stream().filter(field -> !allowed.contains(field)).sorted()
        .map(field -> switch (field) {
          case "provider_reference" -> "provider_reference is taken only with outcome succeeded or declined, not " + outcome;
          case "decline_code" -> "decline_code is taken only with outcome declined, not " + outcome;
          default -> PaymentRequestParser.memberName(field) + " is no member of a verdict";
        }).toList();
    if (!notTaken.isEmpty()) {
      throw badVerdict(String.join("; ", notTaken));
    }
    if (json.containsKey(WITHOUT_ACQUIRER) && !(json.getValue(WITHOUT_ACQUIRER) instanceof Boolean)) {
      throw new ApiProblem(ErrorCode.INVALID_REQUEST, WITHOUT_ACQUIRER + ": must be true or false");
    }
    if (outcome.equals("succeeded") && !json.containsKey("provider_reference")) {
      throw badVerdict("a succeeded payment needs its provider_reference");
    }
    for (String field : List.of("provider_reference", "decline_code")) {
      if (json.containsKey(field) && !HttpProvider.storable(json.getValue(field))) {
        throw new ApiProblem(ErrorCode.INVALID_REQUEST, field + ": must be text of 1 to " + HttpProvider.MAX_REFERENCE_CHARS
            + " characters, none of them control characters or unpaired surrogate escapes");
      }
    }
    return json;
  }

  private static ApiProblem badVerdict(String fault) {
    return new ApiProblem(ErrorCode.INVALID_REQUEST, (fault == null ? "not a verdict" : fault) + ": " + VERDICT_SHAPE);
  }

  private static void json(RoutingContext ctx, int status, JsonObject body) {
    ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json");
    HeadAnswers.end(ctx.request(), body.encode());
  }
}
