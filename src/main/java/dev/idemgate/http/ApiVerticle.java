package dev.idemgate.http;

import dev.idemgate.anomaly.AnomalyMonitor;
import dev.idemgate.anomaly.TwinDetector;
import dev.idemgate.anomaly.TwinVerdict;
import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.auth.MerchantKeys;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.CompletionNotifier;
import dev.idemgate.idempotency.Fingerprint;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.idempotency.ReplayCache;
import dev.idemgate.idempotency.SharedIdempotencyStore;
import dev.idemgate.idempotency.StoredResponse;
import dev.idemgate.observability.GatewayMetrics.RequestOutcome;
import dev.idemgate.observability.GatewayMetrics;
import dev.idemgate.observability.Tracing;
import dev.idemgate.payment.ParsedPayment;
import dev.idemgate.payment.PayOutcome;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.payment.PaymentRequestParser;
import dev.idemgate.payment.PaymentService;
import dev.idemgate.provider.ProviderClient;
import dev.idemgate.ratelimit.MerchantRateLimiter;
import dev.idemgate.storage.PipelinedRedis;
import dev.idemgate.storage.Postgres;
import dev.idemgate.storage.RedisClients;
import io.netty.channel.MaxMessagesRecvByteBufAllocator;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.Http2Settings;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.impl.Http1xServerConnection;
import io.vertx.core.json.JsonArray;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.impl.ConnectionBase;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import io.vertx.redis.client.Redis;
import io.vertx.sqlclient.Pool;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The public API (DESIGN §2), one instance per event loop. Each instance owns its PostgreSQL pool
 * and Redis client. Authentication, media type and key checks run before the body is read.
 */
public final class ApiVerticle extends VerticleBase {
  static final int MAX_BODY_BYTES = 64 * 1024;
  static final int MAX_WAIT_SECONDS = 10;
  static final int MAX_CONCURRENT_STREAMS = 256;
  static final int MAX_HEADER_BYTES = 16 * 1024;
  /**
   * Rapid-reset (CVE-2023-44487) guard: more RST_STREAM frames than this from one connection within
   * {@link #RST_FLOOD_WINDOW_SECONDS} close it (GOAWAY ENHANCE_YOUR_CALM, every stream on it lost).
   * 100 a second: an attack sends thousands a second, while an h2c proxy in front (Envoy, Istio)
   * carries many clients on one connection and turns each client's timeout into a reset there. At
   * Netty's default, 200 in 30 s, 6.7 cancels a second closed such a connection with up to 256
   * payments on it (a session 33 probe: 202 cancels of 1 s client timeouts, 5 answers lost).
   */
  static final int RST_FLOOD_MAX_FRAMES = 1_000;
  static final int RST_FLOOD_WINDOW_SECONDS = 10;
  /** The access-log outcome of a request the server closed unanswered because the drain ran out. */
  static final String SHUTDOWN_OUTCOME = "shutdown";
  private static final String KEY_HEADER = "Idempotency-Key";
  /**
   * Claim (and completion) groups at the database at once, for the whole process (the store is
   * shared by every API verticle). Few and large beats many and small: each statement costs
   * PostgreSQL a round of binding, executing, committing and waking up whatever its size, so while
   * a group is out, every write that arrives joins the next one. Measured on 2 cores,
   * 32 connections: eight groups in flight per verticle 2,900 fresh payments/s, two 3,500/s (an
   * earlier session); then, runs in turn, two per verticle 3,200 and 4,000/s against one shared
   * group 4,500 and 5,900/s (about 8 payments per statement instead of 5). Two shared groups
   * in flight were slower again, in three rounds of three (docs/performance-history.md, session 5).
   */
  static final int GROUPS_IN_FLIGHT = 1;

  /** Numbers the API verticles of the process, for the names of their pools. */
  private static final AtomicInteger INSTANCES = new AtomicInteger();
  private static final String OUTCOME = "idemgate.outcome";
  /** Set on a request that reached an API route's {@link #track}, which writes its access line. */
  private static final String TRACKED = "idemgate.tracked";
  private static final String BODY_DEADLINE = "idemgate.bodyDeadline";
  private static final ApiProblem NO_SUCH_PAYMENT = new ApiProblem(ErrorCode.NOT_FOUND, "no payment with this id");

  private final GatewayConfig config;
  private final GatewayMetrics metrics;
  private final ReplayCache replays;
  private final SharedIdempotencyStore sharedStore;
  private final MerchantKeys merchantKeys;
  /** What a body, a logged header or a path may not hold: the keys in force (as reloaded) and the admin token. */
  private final CredentialScanner credentials;
  private final MerchantRateLimiter rateLimiter;
  private final boolean rateLimited;
  private Pool pool;
  /** The gate's pipelined connection and the twin check's own: closed when they stop answering (RedisClients#options). */
  private Redis gateRedis;
  /** The completion notifier's subscriptions only, which wait quietly on purpose (RedisClients#subscriberOptions). */
  private Redis subscriberRedis;
  private PipelinedRedis pipeline;
  private HttpServer server;
  private PaymentService payments;
  private IdempotencyStore store;
  private CompletionNotifier notifier;
  private TwinDetector twins;
  /** Requests of this verticle whose body is not in yet; see {@link #limitBodyTime}. */
  private Deadlines<RoutingContext> bodyDeadlines;
  private UndeliveredAnswers undelivered;
  private final ShutdownNotice shutdownNotice = new ShutdownNotice();
  private final DrainTally drainTally;
  /**
   * Set when the server's shutdown is asked for: from {@link #serverClosesAt} ({@link System#nanoTime})
   * on, the server closes the connections still open, answered or not. Volatile: written by stop(),
   * which may run on a thread of Netty's (the shutdown notice's own timeout completes it there), and
   * read by the event loop's end handlers.
   */
  private volatile boolean serverCloses;
  private volatile long serverClosesAt;
  private long bodySweepTimer = -1;
  /** The second {@link #dateValue} names (this verticle's event loop only). */
  private long dateSecond = -1;
  private CharSequence dateValue;

  /**
   * @param replays completed responses shared by every API verticle of this process
   * @param sharedStore the idempotency store shared by every API verticle of this process
   * @param merchantKeys the API keys, shared by every API verticle of this process
   * @param rateLimiter the merchants' request counts, shared by every API verticle of this process
   * @param drainTally what the drains of every API verticle of this process left undone
   */
  public ApiVerticle(GatewayConfig config, GatewayMetrics metrics, ReplayCache replays,
      SharedIdempotencyStore sharedStore, MerchantKeys merchantKeys, MerchantRateLimiter rateLimiter, DrainTally drainTally) {
    this.config = config;
    this.metrics = metrics;
    this.replays = replays;
    this.sharedStore = sharedStore;
    this.merchantKeys = merchantKeys;
    this.credentials = new CredentialScanner(merchantKeys, config.adminToken());
    this.rateLimiter = rateLimiter;
    this.rateLimited = config.rateLimited();
    this.drainTally = drainTally;
  }

  @Override
  public Future<?> start() {
    String poolName = "api-" + INSTANCES.incrementAndGet(); // the pools' name on the vertx_pool_* meters
    pool = Postgres.requestPool(vertx, config, config.pgPoolSize(), poolName);
    gateRedis = Redis.createClient(vertx, RedisClients.pipelineOptions(config, poolName + "-gate"));
    subscriberRedis = Redis.createClient(vertx, RedisClients.subscriberOptions(config, poolName + "-notifier"));
    // Made by the first verticle to start, on its loop and with its pool; see stop().
    store = sharedStore.join(() -> new IdempotencyStore(pool, context, GROUPS_IN_FLIGHT, config.storeTimeout(),
        config.lease(), config.providerId(), config.ledgerProviders(), metrics.storeGroupSizes()));
    pipeline = RedisClients.pipeline(gateRedis, context, config);
    RedisGate gate = new RedisGate(pipeline, config.redisTimeout(), config.lease(), RedisGate.breaker(vertx));
    notifier = new CompletionNotifier(vertx, context, subscriberRedis, config.redisTimeout().toMillis(),
        RedisClients.isCluster(config) ? 0 : RedisClients.readIdle(config).toMillis());
    payments = new PaymentService(vertx, gate, store, new ProviderClient(vertx.eventBus(), config), notifier, metrics, config,
        replays);
    twins = AnomalyMonitor.of(vertx, config, metrics.registry()).detector(pipeline, gateRedis, pool, credentials);
    long bodyTimeoutMs = config.requestBodyTimeout().toMillis();
    bodyDeadlines = new Deadlines<>(bodyTimeoutMs);
    undelivered = new UndeliveredAnswers(bodyTimeoutMs, UndeliveredAnswers.API_MAX_HELD);
    bodySweepTimer = vertx.setPeriodic(Deadlines.sweepIntervalMillis(bodyTimeoutMs), id -> {
      long now = System.nanoTime();
      bodyDeadlines.sweep(now, this::bodyTimedOut);
      undelivered.sweep(now);
    });
    Router router = router();
    server = vertx.createHttpServer(serverOptions()).requestHandler(request -> {
          // Before routing, so that every answer echoes the key: a 404, a 405 and a malformed request's
          // 400 too, not only those of the payment route (DESIGN 2).
          echoKey(request);
          shutdownNotice.requestArrived(request);
          long arrived = System.nanoTime();
          if (Problems.refusedMalformed(request)) {
            logUnrouted(request, request.response().headers().get("X-Request-Id"), !request.response().ended(), arrived,
                credentials);
          } else {
            router.handle(request);
          }
        })
        .invalidRequestHandler(request -> {
          long arrived = System.nanoTime();
          Problems.invalidRequest(request);
          if (AccessLog.requestLineRead(request)) {
            logUnrouted(request, request.response().headers().get("X-Request-Id"), !request.response().ended(), arrived,
                credentials);
          }
        }).connectionHandler(connection -> {
      readOncePerLoop(connection);
      ClientResets.install(connection);
      metrics.connectionOpened();
      closed(connection).onComplete(v -> {
        metrics.connectionClosed();
        shutdownNotice.closed(connection);
      });
    });
    return server.listen(config.httpPort()).onFailure(e -> sharedStore.leave(context));
  }

  /**
   * One socket read per event-loop pass on an HTTP/1.x connection. Hazard: Vert.x 5.0.7 stops
   * reading a connection whose pipelined requests wait only at the end of a pass (8 or more
   * messages waiting), and Netty's pass reads up to 16 times, up to 64 KiB each: a busy connection
   * whose kernel queue had filled read about 1 MB at once, 4,300 small payments parsed and held,
   * again each time they were answered; 100 such connections filled -Xmx256m. With one read a pass
   * reads at most 64 KiB (about 290 payments). Not for HTTP/2, whose streams are limited on their
   * own. Netty takes the limit as a pass starts, so the pass that opened the connection may still
   * read up to 16 times, as much as the kernel holds for a new connection (about 130 KB).
   * Hazard: each channel has an allocator of its own only while no receive buffer size is set on the
   * server's options; with one, Vert.x gives every connection one shared FixedRecvByteBufAllocator,
   * and this would then limit HTTP/2 connections too.
   */
  private static void readOncePerLoop(HttpConnection connection) {
    if (connection instanceof Http1xServerConnection http1
        && http1.channel().config().getRecvByteBufAllocator() instanceof MaxMessagesRecvByteBufAllocator reads) {
      reads.maxMessagesPerRead(1);
    }
  }

  /**
   * Completes when {@code connection}'s socket is closed, on the connection's context. Hazard: not
   * the close handler. Vert.x 5.0.7 does not call it for an HTTP/2 connection that ends while
   * Netty still holds streams it refused itself (431 for headers over the limit): its connection
   * error handler fails on those streams with a NullPointerException (a WARN from Netty's
   * DefaultPromise) and the close is never handed on, so idemgate_http_connections counted such a
   * connection open for ever (before session 30: one more for each client that aborted one, and
   * the stopping notice kept it). The socket's own close future always completes; it backs
   * Vert.x's {@code closeFuture()}, an implementation class of the pinned Vert.x version.
   */
  private static Future<Void> closed(HttpConnection connection) {
    if (connection instanceof ConnectionBase base) {
      return base.closeFuture();
    }
    Promise<Void> closed = Promise.promise();
    connection.closeHandler(closed::tryComplete);
    return closed.future();
  }

  @Override
  public Future<?> stop() {
    // Stops accepting, lets in-flight requests finish (HTTP/2 clients are told first, see
    // ShutdownNotice, within the drain), then closes. The pool closes only once every verticle has
    // left the shared store: the store may be running on this verticle's loop and pool, for
    // another verticle's in-flight payments.
    long drainEnds = System.nanoTime() + config.drainTimeout().toNanos();
    Future<Void> http = server == null ? Future.succeededFuture()
        : shutdownNotice.announce().compose(told -> {
          long leftMs = Math.max(0, TimeUnit.NANOSECONDS.toMillis(drainEnds - System.nanoTime()));
          serverClosesAt = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(leftMs);
          serverCloses = true; // after the time it publishes
          return server.shutdown(leftMs, TimeUnit.MILLISECONDS);
        });
    Future<Void> anomalies = twins == null ? Future.succeededFuture() : twins.close();
    return http.andThen(drained -> vertx.cancelTimer(bodySweepTimer))
        // Payments whose clients hung up are no open request: finish them within the same drain.
        // Those still under way then are cut: they go on until the pools close, their claims stay
        // for recovery, and the gateway's one warning counts them.
        .eventually(() -> payments == null ? Future.succeededFuture()
            : payments.settled(drainEnds).andThen(settled -> drainTally.paymentsCut(payments.underway())))
        .eventually(() -> anomalies)
        .eventually(() -> store == null ? Future.succeededFuture() : sharedStore.leave(context))
        .eventually(() -> Future.join(notifier.close(), pipeline.close(), pool.close(), subscriberRedis.close())
            .eventually(gateRedis::close));
  }

  /**
   * The Date header's value for an answer now. Every answer carries Date (RFC 9110 6.6.1): a client
   * reads Idempotency-Key-Expires against it, not against its own clock. Made once a second, as the
   * header's own bytes, so that an answer pays for a clock read and no formatting or encoding.
   * Replays with and without the header, 8 alternating 10 s wrk rounds each on the 2-core machine:
   * formatted per request as a String, a median ratio of 0.95; this way 0.99, inside the noise.
   */
  private CharSequence date() {
    long second = System.currentTimeMillis() / 1_000;
    if (second != dateSecond) {
      dateSecond = second;
      dateValue = HttpHeaders.createOptimized(HttpDates.format(Instant.ofEpochSecond(second)));
    }
    return dateValue;
  }

  private HttpServerOptions serverOptions() {
    HttpServerOptions options = new HttpServerOptions()
        .setHttp2ClearTextEnabled(true)
        // Vert.x closes nothing idle unless told: an abandoned connection would hold its
        // descriptor and buffers for ever.
        .setIdleTimeout((int) config.httpIdleTimeout().toMillis())
        .setIdleTimeoutUnit(TimeUnit.MILLISECONDS)
        // HTTP/1.1 headers up to 16 KiB, as HTTP/2's header list below (Vert.x's default is 8 KiB).
        .setMaxHeaderSize(MAX_HEADER_BYTES)
        // No WebSocket is served, so no WebSocket compression: with it Vert.x puts Netty's
        // extension handler on every HTTP/1.1 connection, which resets the connection once 129
        // pipelined requests wait for answers, answering none of them (the first one charged).
        .setPerFrameWebSocketCompressionSupported(false)
        .setPerMessageWebSocketCompressionSupported(false)
        // Explicit HTTP/2 limits: streams per connection, and rapid-reset (CVE-2023-44487)
        // protection (RST_FLOOD_MAX_FRAMES). Hazard: Netty
        // enforces the stream limit before the client can have read it, and the body of a stream
        // refused for it ends the connection (README, known limits).
        .setInitialSettings(new Http2Settings().setMaxConcurrentStreams(MAX_CONCURRENT_STREAMS).setMaxHeaderListSize(MAX_HEADER_BYTES))
        .setHttp2RstFloodMaxRstFramePerWindow(RST_FLOOD_MAX_FRAMES)
        .setHttp2RstFloodWindowDuration(RST_FLOOD_WINDOW_SECONDS)
        .setHttp2RstFloodWindowDurationTimeUnit(TimeUnit.SECONDS);
    if (config.tlsCert().isPresent()) {
      options.setSsl(true).setUseAlpn(true)
          .setAlpnVersions(List.of(HttpVersion.HTTP_2, HttpVersion.HTTP_1_1))
          .setEnabledSecureTransportProtocols(Set.of("TLSv1.2", "TLSv1.3"))
          .setSslEngineOptions(TlsEngine.preferred())
          .setKeyCertOptions(new PemKeyCertOptions().setCertPath(config.tlsCert().get()).setKeyPath(config.tlsKey().get()));
    }
    return options;
  }

  private Router router() {
    Router router = Router.router(vertx);
    router.route().handler(ctx -> {
      // Date as the headers go out, not as the request arrived: a payment answered after a slow
      // acquirer (10 s) carried the Date of its arrival, 10 s old, against which clients read
      // Idempotency-Key-Expires. Through Vert.x Web's own list: it takes the response's single
      // headersEndHandler for itself. Every request the server takes reaches this route (it has no
      // path or method), 404s and 405s too; those refused before routing get theirs from Problems.
      ctx.addHeadersEndHandler(v -> ctx.response().headers().set(HttpHeaders.DATE, date()));
      undelivered.watch(ctx);
      shutdownNotice.watch(ctx);
      RequestIds.assign(ctx);
    });
    BodyHandler body = BodyHandler.create(false).setBodyLimit(MAX_BODY_BYTES);
    for (String path : new String[] {"/pay", "/v1/payments"}) {
      // Two routes because Vert.x Web puts body handlers before user handlers on one route: the
      // cheap checks run first, so a bad request is refused before its body is read.
      router.post(path)
          .handler(this::track)
          .handler(this::limitBodyTime)
          .handler(this::authenticate)
          .handler(ctx -> limitRate(ctx, MerchantRateLimiter.Kind.PAYMENTS))
          .handler(this::requireJson)
          .handler(this::requireKey);
      router.post(path).handler(body).handler(this::pay);
    }
    // HEAD as GET (RFC 9110 9.1), its answer without the body (sendPayment).
    router.route("/v1/payments/:id").method(HttpMethod.GET).method(HttpMethod.HEAD)
        .handler(this::track).handler(this::authenticate)
        .handler(ctx -> limitRate(ctx, MerchantRateLimiter.Kind.READS))
        .handler(this::getPayment);
    router.route().failureHandler(Problems::handleFailure);
    // 400: a path the router cannot decode (a bad percent-encoding) reaches no route. The access
    // lines of these three are written here, off the path of every routed request.
    router.errorHandler(400, ctx -> {
      logIfUnrouted(ctx);
      Problems.undecodablePath(ctx);
    });
    router.errorHandler(404, ctx -> {
      logIfUnrouted(ctx);
      Problems.handleFailure(ctx);
    });
    Handler<RoutingContext> methodNotAllowed = Problems.methodNotAllowed(router);
    router.errorHandler(405, ctx -> {
      logIfUnrouted(ctx);
      methodNotAllowed.handle(ctx);
    });
    return router;
  }

  /**
   * Answers 408 a payment whose body has not fully arrived {@code request_body_timeout} after its
   * headers, and closes its connection (HTTP/2: resets its stream), since the rest of the body may
   * never come. Without it, a client that stops sending mid-body holds the request, and the
   * in-flight gauge, until the connection dies. The deadline ends once the body is in ({@link #pay})
   * or the request is answered: past that point every step has a deadline of its own. One periodic
   * sweep per verticle finds the late ones ({@link Deadlines}), so the 408 comes up to a tenth
   * of the timeout (at most 1 s) after the deadline.
   */
  private void limitBodyTime(RoutingContext ctx) {
    Deadlines<RoutingContext>.Waiting waiting = bodyDeadlines.add(ctx, System.nanoTime());
    ctx.put(BODY_DEADLINE, waiting);
    ctx.addEndHandler(done -> waiting.done());
    ctx.next();
  }

  private void bodyTimedOut(RoutingContext ctx) {
    if (ctx.response().ended() || ctx.response().closed()) {
      return;
    }
    // The rest of the body may never come: the stream, or the connection, is done.
    outcome(ctx, RequestOutcome.REJECTED);
    Problems.sendLeavingBodyUnread(ctx, new ApiProblem(ErrorCode.REQUEST_TIMEOUT, "the request body did not arrive within "
        + config.requestBodyTimeout().toMillis() + " ms of its headers; nothing was claimed or charged"));
  }

  /**
   * Echoes the request's Idempotency-Key, as sent, on whatever answers it. Not a key sent twice
   * (which one?), nor one holding characters other than printable ASCII, which a header value may
   * not carry back safely, nor one over 1 KiB.
   */
  private static void echoKey(HttpServerRequest request) {
    String raw = Headers.single(request, KEY_HEADER);
    if (raw != null && raw.length() <= 1024 && raw.chars().allMatch(c -> c >= 0x20 && c <= 0x7e)) {
      request.response().putHeader(KEY_HEADER, raw);
    }
  }

  private void authenticate(RoutingContext ctx) {
    String token = BearerTokens.of(ctx);
    String merchant = token == null ? null : merchantKeys.merchantOf(token);
    if (merchant == null) {
      ctx.response().putHeader("WWW-Authenticate", "Bearer");
      reject(ctx, new ApiProblem(ErrorCode.UNAUTHORIZED, "send Authorization: Bearer <api key> with a valid key"));
      return;
    }
    ctx.put("merchant", merchant);
    ctx.next();
  }

  /**
   * Answers 429 a merchant's request past its {@code rate_limit} (payments and reads each have their
   * own budget), before its body is read or its key looked at: nothing is claimed, stored or charged,
   * and a retry after Retry-After is served as if this one never came.
   */
  private void limitRate(RoutingContext ctx, MerchantRateLimiter.Kind kind) {
    String merchant = ctx.get("merchant");
    if (!rateLimited || rateLimiter.tryAcquire(merchant, kind, System.currentTimeMillis())) {
      ctx.next();
      return;
    }
    boolean payment = kind == MerchantRateLimiter.Kind.PAYMENTS;
    metrics.rateLimited(payment ? "pay" : "get_payment");
    outcome(ctx, RequestOutcome.RATE_LIMITED);
    Problems.send(ctx, new ApiProblem(ErrorCode.RATE_LIMITED, "more than " + config.rateLimitFor(merchant) + " "
        + (payment ? "payments per second for this merchant; this request was refused unread and charged nothing "
            + "(a payment made earlier under its key stands): retry with the same key after Retry-After seconds"
            : "reads per second for this merchant: retry after Retry-After seconds"), null, 1));
  }

  private void requireJson(RoutingContext ctx) {
    ApiProblem unreadable = Headers.unreadableJson(ctx.request());
    if (unreadable != null) {
      reject(ctx, unreadable);
      return;
    }
    // HTTP/1.1 framing: only chunked is read; with another coding before it (gzip, chunked) the
    // body would be read as if it were not coded at all.
    String transfer = ctx.request().getHeader("Transfer-Encoding");
    if (transfer != null && ctx.request().version() != HttpVersion.HTTP_2
        && !transfer.trim().equalsIgnoreCase("chunked")) {
      outcome(ctx, RequestOutcome.REJECTED); // the body's framing cannot be trusted: nothing after it is read
      Problems.sendLeavingBodyUnread(ctx, new ApiProblem(ErrorCode.UNSUPPORTED_MEDIA_TYPE,
          "the only Transfer-Encoding supported is chunked"));
      return;
    }
    ctx.next();
  }

  private void requireKey(RoutingContext ctx) {
    List<String> keys = ctx.request().headers().getAll(KEY_HEADER);
    if (keys.size() > 1) {
      // A client default plus a per-request key, say: taking either would key this payment on a
      // guess (every payment on the default one would replay the first).
      reject(ctx, new ApiProblem(ErrorCode.IDEMPOTENCY_KEY_INVALID,
          "send one Idempotency-Key header; this request has " + keys.size()));
      return;
    }
    String raw = keys.isEmpty() ? null : keys.get(0);
    if (raw == null || raw.isBlank()) {
      reject(ctx, new ApiProblem(ErrorCode.IDEMPOTENCY_KEY_MISSING,
          "send an Idempotency-Key header: 1-255 visible ASCII characters, unique per payment"));
      return;
    }
    IdempotencyKey key = IdempotencyKey.parse(raw).orElse(null);
    if (key == null) {
      reject(ctx, new ApiProblem(ErrorCode.IDEMPOTENCY_KEY_INVALID,
          "the Idempotency-Key must be 1-255 visible ASCII characters, bare or as a quoted string"));
      return;
    }
    ctx.put("key", key); // looked at for secrets in pay(), past the replay cache (secretIn)
    ctx.next();
  }

  /**
   * The refusal of a key that holds one of the gateway's credentials, null for any other: a key is
   * stored in PostgreSQL and Redis as sent, and shown on the admin pages. Asked before anything is
   * claimed, but past the replay cache: a key there was asked about when its payment was made, and a
   * replay from memory pays nothing for it (bench/jmh IdempotencyKeyBenchmark).
   * Not a card number: keys are often long numbers (a random 64-bit value, an order number), and one
   * in ten of those passes the Luhn check whatever its first digits (with a card network's first
   * digits only, still about one random 19-digit key in 25): such clients would get 400 for good
   * keys, and a retry of a payment made under one before the check its 400 instead of its answer.
   */
  private ApiProblem secretIn(IdempotencyKey key, String presented) {
    CredentialScanner.Credential credential = credentials.find(key.value(), presented);
    return credential == null ? null : new ApiProblem(ErrorCode.CREDENTIAL_REJECTED, "the Idempotency-Key header holds "
        + credential.named() + " of this gateway; a key is stored as sent, so it must never carry a credential (treat "
        + "that one as exposed); make keys of your own (a UUID, say). " + NOTHING_CLAIMED);
  }

  private static final String NOTHING_CLAIMED = "This request claimed and charged nothing; a payment made under this "
      + "key before the gateway refused such keys stands, charged or not: do not read this as not charged";

  private void pay(RoutingContext ctx) {
    ctx.<Deadlines<RoutingContext>.Waiting>get(BODY_DEADLINE).done(); // the body is in
    if (ctx.response().ended()) {
      // Answered 408 ("nothing was claimed or charged") while the last bytes came in: the 408 may
      // still be waiting to go out, so the stream is not reset yet. The answer stands.
      return;
    }
    String merchant = ctx.get("merchant");
    IdempotencyKey key = ctx.get("key");
    // No buffer at all when an HTTP/1.1 request has neither Content-Length nor Transfer-Encoding
    // (a POST sent without a body): the body handler then reads nothing. It is an empty body.
    Buffer raw = ctx.body().buffer() != null ? ctx.body().buffer() : Buffer.buffer();
    // A replay of the same bytes is answered from memory: no parse, no fingerprint, no Redis.
    String bodyDigest = replays.isOn() ? Fingerprint.sha256Hex(raw.getBytes()) : null;
    StoredResponse cached = replays.find(merchant, key, bodyDigest);
    if (cached != null) {
      metrics.replayCacheHit();
      outcome(ctx, RequestOutcome.REPLAYED);
      sendStored(ctx, cached, true, 0);
      return;
    }
    String presented = BearerTokens.of(ctx); // the key and the body are both looked at for it
    ApiProblem secret = secretIn(key, presented);
    if (secret != null) {
      // Not echoed back either, nor its hash logged (the access line's key_sha256): a credential's would let anyone with the log check a guess.
      ctx.remove("key");
      ctx.response().headers().remove(KEY_HEADER);
      reject(ctx, secret);
      return;
    }
    ParsedPayment parsed = PaymentRequestParser.parse(raw, credentials, presented);
    if (parsed instanceof ParsedPayment.Invalid invalid) {
      JsonArray errors = new JsonArray();
      invalid.errors().forEach(e -> errors.add(e.toJson()));
      reject(ctx, new ApiProblem(ErrorCode.INVALID_REQUEST, "the body is not a valid payment; see errors", errors, null));
    } else if (parsed instanceof ParsedPayment.CardData card) {
      reject(ctx, new ApiProblem(ErrorCode.CARD_DATA_REJECTED, "the field " + card.field()
          + " holds what looks like a card number; send a payment token in source, never card data"));
    } else if (parsed instanceof ParsedPayment.CredentialData credential) {
      reject(ctx, new ApiProblem(ErrorCode.CREDENTIAL_REJECTED, "the field " + credential.field() + " holds "
          + credential.credential().named() + " of this gateway; a payment is stored and sent on to the payment "
          + "provider, so it must never carry a credential (treat that one as exposed)"));
    } else if (parsed instanceof ParsedPayment.Valid valid) {
      PaymentService.PayCommand cmd = new PaymentService.PayCommand(merchant, key, valid.request(), valid.body(),
          bodyDigest);
      // Anomalies (DESIGN §7): for a new payment only (after the gate), one Redis step. Under policy
      // reject it runs before the claim, so a refused twin is never claimed or charged; under flag it
      // cannot refuse, so it runs beside the claim. The check never fails a payment.
      payments.pay(cmd, preferredWait(ctx), twins.guard(ctx.request().headers()))
          .onSuccess(outcome -> respond(ctx, outcome)).onFailure(ctx::fail);
    }
  }

  /**
   * Seconds from {@code Prefer: wait=N} (RFC 7240), capped at {@link #MAX_WAIT_SECONDS}; 0 when absent
   * or unusable. Nothing goes on the response here: {@code Preference-Applied} is for an answer that
   * waited ({@link PayOutcome.Waited}).
   */
  static int preferredWait(RoutingContext ctx) {
    MultiMap headers = ctx.request().headers();
    // Most payments send no Prefer: one lookup, where getAll would make a list for each of them.
    if (headers.get("Prefer") == null) {
      return 0;
    }
    return Math.max(0, waitPreference(headers.getAll("Prefer")));
  }

  /** The {@code wait} of one {@code Prefer} field line: see {@link #waitPreference(List)}. */
  static int waitPreference(String fieldLine) {
    return waitPreference(List.of(fieldLine));
  }

  /**
   * The {@code wait} of a request's {@code Prefer} field lines, in the order sent, in seconds capped
   * at {@link #MAX_WAIT_SECONDS}; -1 when none names {@code wait}, or the first that does gives no
   * number of seconds. Several lines are one list (RFC 7240 §2: "equivalent to a single Prefer
   * header field with the comma-separated concatenation"), and a preference sent twice counts
   * once, as first given (RFC 7240 §2: "only the first instance is to be considered. All
   * subsequent occurrences SHOULD be ignored"): {@code wait=soon, wait=5} waits not at all.
   */
  static int waitPreference(List<String> fieldLines) {
    for (String line : fieldLines) {
      PreferenceReader preferences = new PreferenceReader(line);
      while (preferences.next()) {
        if (preferences.name().equalsIgnoreCase("wait")) {
          return waitSeconds(preferences.value());
        }
      }
    }
    return -1;
  }

  /** The wait's delta-seconds (RFC 7240 §4.3: 1*DIGIT) capped at {@link #MAX_WAIT_SECONDS}, leading zeros and all; -1 for anything else. */
  private static int waitSeconds(String value) {
    if (value == null) {
      return -1;
    }
    int seconds = 0;
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c < '0' || c > '9') {
        return -1;
      }
      // Past the cap it stays past it: a number too long for an int waits as long as any.
      seconds = Math.min(seconds * 10 + (c - '0'), MAX_WAIT_SECONDS + 1);
    }
    return Math.min(seconds, MAX_WAIT_SECONDS);
  }

  private void respond(RoutingContext ctx, PayOutcome outcome) {
    if (outcome instanceof PayOutcome.Waited waited) {
      // RFC 7240 §3: Preference-Applied names the preferences applied to this request's processing.
      // wait is applied only here, where a twin was in flight and this request waited for it; a
      // new payment, a replay or a 409 given at once would have been answered the same without it.
      ctx.response().putHeader("Preference-Applied", "wait=" + waited.waitSeconds());
      respond(ctx, waited.outcome());
    } else if (outcome instanceof PayOutcome.Fresh fresh) {
      int status = fresh.response().status();
      outcome(ctx, status == 201 ? RequestOutcome.CREATED : status == 402 ? RequestOutcome.DECLINED : RequestOutcome.PENDING);
      sendStored(ctx, fresh.response(), false, fresh.retryAfterSeconds());
    } else if (outcome instanceof PayOutcome.Replayed replayed) {
      outcome(ctx, RequestOutcome.REPLAYED);
      sendStored(ctx, replayed.response(), true, replayed.retryAfterSeconds());
    } else if (outcome instanceof PayOutcome.InFlight inFlight) {
      outcome(ctx, inFlight.awaitingRecovery() ? RequestOutcome.IN_FLIGHT_AWAITING_RECOVERY : RequestOutcome.IN_FLIGHT_CONFLICT);
      Problems.send(ctx, new ApiProblem(ErrorCode.IDEMPOTENCY_KEY_IN_USE, inFlight.awaitingRecovery()
          ? "a request with this key is still unsettled and the gateway instance handling it may have stopped; "
              + "recovery settles it with the payment provider within about Retry-After seconds: retry with this same "
              + "key then, never with a new one (the payment may have been charged)"
          : "a request with this key is still being processed; retry after Retry-After seconds", null,
          inFlight.retryAfterSeconds()));
    } else if (outcome instanceof PayOutcome.KeyReused) {
      outcome(ctx, RequestOutcome.KEY_REUSED);
      Problems.send(ctx, new ApiProblem(ErrorCode.IDEMPOTENCY_KEY_REUSED,
          "this key was already used with a different payload; use a new key for a new payment"));
    } else if (outcome instanceof PayOutcome.ProviderUnavailable unavailable) {
      outcome(ctx, RequestOutcome.PROVIDER_UNAVAILABLE);
      int retryAfter = unavailable.retryAfterSeconds();
      String detail = !unavailable.keyReleased()
          ? "the payment provider did not take the charge; nothing was charged, but the key stays in use until it is "
              + "released: retry after Retry-After seconds"
          : retryAfter > 0
              // This instance's circuit breaker is open, or the acquirer itself said when to come back.
              ? "the payment provider is failing or refusing charges for Retry-After seconds; nothing was "
                  + "charged and the key is free: retry after Retry-After seconds"
              : "the payment provider did not take the charge; nothing was charged and the key is free: retrying is safe";
      Problems.send(ctx, new ApiProblem(ErrorCode.PROVIDER_UNAVAILABLE, detail, null, retryAfter > 0 ? retryAfter : null));
    } else if (outcome instanceof PayOutcome.Refused refused && refused.reason() instanceof TwinVerdict.Reject twin) {
      outcome(ctx, RequestOutcome.DUPLICATE_SUSPECTED);
      Problems.send(ctx, duplicateSuspected(twin.twin()));
    } else if (outcome instanceof PayOutcome.StoreDown down) {
      outcome(ctx, RequestOutcome.STORE_UNAVAILABLE);
      Problems.send(ctx, new ApiProblem(ErrorCode.STORE_UNAVAILABLE,
          "the payment store is unavailable; this request charged nothing (an earlier request with this key may have): "
              + "retry with the same key after Retry-After seconds, never with a new one", null, down.retryAfterSeconds()));
    }
  }

  private static ApiProblem duplicateSuspected(TwinVerdict.Twin twin) {
    String original = twin.originalPaymentId() == null ? "a payment still in flight" : "payment " + twin.originalPaymentId();
    return new ApiProblem(ErrorCode.DUPLICATE_PAYMENT_SUSPECTED, "the same payment was made under another "
        + "idempotency key within the duplicate window (" + original + "); retry with that key, or send "
        + TwinDetector.REPEAT_HEADER + ": intended if charging again is meant")
        .with("original_payment_id", twin.originalPaymentId())
        // The payment's created_at as GET shows it when the ledger named it; while the original is in
        // flight (no payment yet), when it reached the gateway.
        .with("original_created_at", (twin.originalCreatedAt() != null ? twin.originalCreatedAt()
            : Instant.ofEpochMilli(twin.originalAtMillis())).toString());
  }

  /** @param retryAfterSeconds for a 202, when a retry may get the final answer (at least 1 is sent) */
  private void sendStored(RoutingContext ctx, StoredResponse stored, boolean replay, int retryAfterSeconds) {
    var response = ctx.response().setStatusCode(stored.status())
        .putHeader("Content-Type", "application/json");
    if (stored.status() != 202) {
      // A pending payment's key expires only once its outcome is known (the purge leaves pending
      // records), and its expiry is set then: a date on a 202 was one the key would outlive.
      response.putHeader("Idempotency-Key-Expires", HttpDates.format(stored.expiresAt()));
    } else {
      // When to poll: asked sooner, the retry gets this same 202 (PendingRetryAfter).
      response.putHeader("Retry-After", String.valueOf(Math.max(1, retryAfterSeconds)));
    }
    if (stored.status() == 201 || stored.status() == 202) {
      response.putHeader("Location", "/v1/payments/" + stored.paymentId());
    }
    if (replay) {
      response.putHeader("Idempotent-Replayed", "true");
    }
    response.end(stored.body());
  }

  /** A payment's answer to GET, or to HEAD its headers alone ({@link HeadAnswers}). */
  private static void sendPayment(RoutingContext ctx, String body) {
    // A GET that holds back a body for 100 (Continue) is answered unread, as a refusal is.
    ctx.response().putHeader("Content-Type", "application/json");
    Problems.answerMaybeBeforeBody(ctx.request(), () -> HeadAnswers.end(ctx.request(), body));
  }

  private void getPayment(RoutingContext ctx) {
    String merchant = ctx.get("merchant");
    String id = ctx.pathParam("id");
    if (!PaymentJson.isPaymentId(id)) {
      // Not an id this gateway makes, so no payment has it; and PostgreSQL would refuse some such
      // text (a NUL byte) with an error that must not read as "the store is unavailable".
      Problems.send(ctx, NO_SUCH_PAYMENT);
      return;
    }
    store.findPayment(merchant, id)
        .onSuccess(row -> {
          if (row == null) {
            Problems.send(ctx, NO_SUCH_PAYMENT);
          } else {
            sendPayment(ctx, PaymentJson.render(row));
          }
        })
        .onFailure(failure -> Problems.send(ctx, new ApiProblem(ErrorCode.STORE_UNAVAILABLE,
            "the payment store is unavailable; retry later", null, 2)));
  }

  private Future<Void> reject(RoutingContext ctx, ApiProblem problem) {
    outcome(ctx, RequestOutcome.REJECTED);
    return Problems.send(ctx, problem);
  }

  private static void outcome(RoutingContext ctx, RequestOutcome outcome) {
    ctx.put(OUTCOME, outcome);
  }

  /**
   * Gives a request that no API route takes (a 404, a 405, a path that cannot be decoded) its access
   * line once it ended: route {@code none} and the path ({@link AccessLog#loggablePath}), unless
   * {@link #track} ran for it and writes its own. Without it an ingress that rewrote paths wrongly
   * produced 404s the gateway logged nowhere. The latency counts from the router's answer, not from
   * the request's arrival: a microsecond apart, and no cost added to every routed request.
   */
  private void logIfUnrouted(RoutingContext ctx) {
    long start = System.nanoTime();
    ctx.addEndHandler(done -> {
      if (ctx.get(TRACKED) == null) {
        logUnrouted(ctx.request(), RequestIds.of(ctx), AccessLog.clientClosed(ctx, done), start, credentials);
      }
    });
  }

  /** The access line of a request no route took, or answered before routing (malformed target or Host, headers unreadable). */
  private static void logUnrouted(HttpServerRequest request, String requestId, boolean clientClosed, long start,
      CredentialScanner credentials) {
    AccessLog.line(request, requestId, "route", "none", clientClosed, System.nanoTime() - start, credentials)
        .addKeyValue("path", AccessLog.loggablePath(request, credentials))
        .log("request");
  }

  /**
   * Whether a connection that closed unanswered at {@code now} was closed by the server because the
   * drain ran out: Vert.x closes the connections still open once the shutdown's timeout has passed,
   * never before, so an unanswered close from then on is the server's. Before then the server closes
   * no connection with a request unanswered (HTTP/1.1 after its answer, HTTP/2 once its streams are
   * done): such a close is the client's. Before session 33 the cut requests were logged
   * {@code client_closed}, and nothing showed that a drain had run out.
   *
   * <p>The metrics count a cut request under {@code client_closed}: the process exits right after
   * the drain, before any scrape could read a series of its own, which would be 18 more series
   * always at 0.
   */
  private boolean closedByDrain(long now) {
    return serverCloses && now - serverClosesAt >= 0;
  }

  /**
   * First handler of every API route: counts the request in flight and, when the response is done,
   * records its outcome and writes the one access log line: request id, merchant, outcome, status,
   * latency and a hash of the key. Never the key itself, the body or the API key.
   */
  private void track(RoutingContext ctx) {
    ctx.put(TRACKED, Boolean.TRUE);
    long start = System.nanoTime();
    String traceId = Tracing.currentTraceId(); // the server span is current now, no longer once the response ended
    boolean payment = ctx.request().method() == HttpMethod.POST;
    if (payment) {
      metrics.requestStarted();
    }
    ctx.addEndHandler(done -> {
      // The connection closed before the answer went out (a client timeout, a load tester
      // stopping). Nothing was answered, so no status: 499, as nginx logs it.
      boolean clientClosed = AccessLog.clientClosed(ctx, done);
      long now = System.nanoTime();
      long latencyNanos = now - start; // one figure for the meter and the log line
      RequestOutcome outcome = clientClosed ? RequestOutcome.CLIENT_CLOSED : ctx.get(OUTCOME);
      // Not the client: the drain ran out and the server closed the connection. Only the access line
      // tells it apart; the meters count it client_closed (see closedByDrain).
      boolean cut = clientClosed && closedByDrain(now);
      if (payment) {
        if (outcome == null) {
          // Answered by the router's failure handler, not by a step that names its outcome: a
          // request the router refused (413, say), or a 500 for a failure nothing expected, which
          // must not hide among the client's mistakes.
          outcome = ctx.response().getStatusCode() >= 500 ? RequestOutcome.INTERNAL_ERROR : RequestOutcome.REJECTED;
        }
        metrics.requestEnded(outcome, latencyNanos);
      }
      var line = AccessLog.line(ctx, "route", payment ? "pay" : "get_payment", clientClosed, latencyNanos, credentials);
      String merchant = ctx.get("merchant");
      if (merchant != null) {
        line = line.addKeyValue("merchant", merchant);
      }
      if (outcome != null) {
        line = line.addKeyValue("outcome", cut ? SHUTDOWN_OUTCOME : outcome.name().toLowerCase(Locale.ROOT));
      }
      IdempotencyKey key = ctx.get("key");
      if (key != null) {
        line = line.addKeyValue("key_sha256", Fingerprint.sha256Hex(key.value()).substring(0, 16));
      }
      if (traceId != null) {
        line = line.addKeyValue("trace_id", traceId);
      }
      String forwardedId = RequestIds.forwarded(ctx.request(), credentials);
      if (forwardedId != null) {
        line = line.addKeyValue("forwarded_request_id", forwardedId);
      }
      line.log("request");
    });
    ctx.next();
  }
}
