package dev.idemgate.provider;

import dev.idemgate.config.GatewayConfig;
import io.vertx.circuitbreaker.CircuitBreaker;
import io.vertx.circuitbreaker.CircuitBreakerOptions;
import io.vertx.circuitbreaker.CircuitBreakerState;
import io.vertx.circuitbreaker.OpenCircuitException;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code http} connector (DESIGN §4): charges and inquiries over the acquirer's JSON-over-HTTP
 * protocol ({@link AcquirerServer} speaks it), behind a circuit breaker.
 *
 * <p>What matters most is telling "definitely not charged" from "may have charged", so the call is
 * split at the one moment that decides it: the Vert.x {@code HttpClient} hands out a request only
 * once a connection is ready, and nothing of the charge has been written before that. Any failure up
 * to there (connection refused, connect timeout, no pooled connection in time) is
 * {@link ProviderOutcome.NotAttempted}; any failure after it (response timeout, reset, connection
 * closed) is {@link ProviderOutcome.Unknown}. The core client is used rather than WebClient because
 * WebClient hides that boundary, and guessing it back from exception types would misfile a request
 * that timed out in the pool queue.
 *
 * <p>Answers, mapped in {@link #mapCharge}:
 * <ul>
 *   <li>2xx with {@code status: succeeded | declined} → SUCCEEDED / DECLINED; a 2xx it cannot read,
 *       or whose charge id could not be stored (over {@value #MAX_REFERENCE_CHARS} characters, or
 *       holding control characters) → UNKNOWN (the acquirer accepted something). So is one whose
 *       {@code amount} or {@code currency}, when it gives them, are not the ones asked for (a partial
 *       approval, or an earlier charge under the provider key): that charge is not the payment's.</li>
 *   <li>503 with the acquirer's own error body ({@code {"error": "snake_case_code"}}) and 429 → NOT_ATTEMPTED: the
 *       acquirer refuses before accepting (503 is the protocol's "down before acceptance"; 429 is a
 *       rate limit), for as long as its {@code Retry-After} says ({@link AcquirerRetryAfter}: the
 *       one header of an answer that reaches the client). A 503 without that body → UNKNOWN: it may
 *       come from a proxy between the two (Envoy's "reset before headers") after the charge went through.
 *       An inquiry answered 429 or 503 (with that body or not) is UNKNOWN, carrying the acquirer's
 *       {@code Retry-After}, read alike: recovery asks no sooner ({@link #mapInquiry}).</li>
 *   <li>307 and 308 → NOT_ATTEMPTED ("send it there instead": nothing processed here); other 3xx →
 *       UNKNOWN (a 303 may answer a charge already made). Either way the URL is wrong (an
 *       {@code http://} URL of an {@code https://} acquirer, say), and it counts as trouble.</li>
 *   <li>409 → UNKNOWN: the acquirer is still processing a request under the same provider key, which may charge.</li>
 *   <li>402 with a body the 2xx rule reads as a decline → DECLINED; a 402 whose body names a charge in
 *       any other state (succeeded or processing, of any amount) → UNKNOWN (it contradicts itself, and
 *       a retry could charge twice); a 402 without a charge status is a refusal like the 4xx below.</li>
 *   <li>any other 4xx (400, 401, 404, 422 …) → NOT_ATTEMPTED: the acquirer refused the request as it
 *       stands; retrying it unchanged would fail again, but nothing was charged.</li>
 *   <li>any other 5xx (500, 502, 504 …) and anything else → UNKNOWN: an error after acceptance, or a
 *       proxy that gave up waiting, may hide a charge. An interim 1xx answer is no answer: UNKNOWN,
 *       and its connection is closed, so that the final answer after it reaches nobody.</li>
 * </ul>
 *
 * <p>Circuit breakers open after repeated provider trouble (transport failures, 5xx, 429), not on
 * refusals of a bad request, nor on charges that waited too long for one of the pod's own
 * connections (the pod is busy, not the acquirer). Charges and inquiries have one each, so that a
 * failing inquiry endpoint (recovery sends up to a batch of them every pass) does not refuse new
 * charges. While the charges' one is open a charge is answered NOT_ATTEMPTED without sending
 * anything; while the inquiries' one is, an inquiry is UNKNOWN (an inquiry that did not happen
 * proves nothing). Neither retries: a charge is sent at most once per call.
 *
 * <p>Answers are read up to {@value #MAX_ANSWER_BYTES} bytes; a longer one is cut off and read as
 * no answer (UNKNOWN), so a misrouted URL cannot fill the heap or stall the provider's event loop.
 */
public final class HttpProvider implements PaymentProvider {
  private static final Logger log = LoggerFactory.getLogger(HttpProvider.class);
  /**
   * Connections to the acquirer by default ({@code provider_max_connections}). A charge holds one for
   * the acquirer's whole answer time, so a pod charges at most this many divided by that time a
   * second; charges beyond wait in the pool queue within the connect timeout, then are answered
   * not attempted (502).
   */
  public static final int DEFAULT_MAX_CONNECTIONS = 256;
  private static final int MAX_WAIT_QUEUE = 4096;
  private static final long MAX_CONNECT_TIMEOUT_MS = 2_000;
  /** The connector answers this much before the provider verticle's own deadline for the same call. */
  private static final long ANSWER_MARGIN_MS = 100;
  /** The longest answer read: an acquirer's charge or charge log is a few hundred bytes. */
  static final int MAX_ANSWER_BYTES = 64 * 1024;
  /**
   * The longest charge id or decline code stored. Longer ones, or ones with control characters
   * (a NUL is refused by PostgreSQL, an id over 2,704 bytes by the ledger's index, failing the whole
   * grouped completion with it), are not the acquirer's protocol.
   */
  public static final int MAX_REFERENCE_CHARS = 255;
  /** The acquirer protocol's error codes ({@code acquirer_unavailable}): a 503 with one is a refusal before acceptance. */
  private static final Pattern ERROR_CODE = Pattern.compile("[a-z][a-z0-9_]{0,63}");

  private final URI base;
  private final String basePath;
  private final long timeoutMs;
  private final long connectTimeoutMs;
  private final int maxConnections;
  private final HttpClientAgent client;
  private final CircuitBreaker chargeBreaker;
  private final CircuitBreaker inquiryBreaker;
  /** How long the breakers stay open before they let one call through. */
  private final long breakerResetNanos;
  /**
   * When the charges' breaker last opened (System.nanoTime), so that a charge it refuses can say when
   * this instance tries the acquirer again. Written by its open handler, which the breaker calls
   * before it refuses any charge as open.
   */
  private volatile long chargeCircuitOpenedAt;
  /**
   * Requests holding one of the pool's connections. Written on the provider verticle's event loop
   * only (the client's callbacks run on the context that made it); volatile for the metrics scrape.
   */
  private volatile int holdingConnections;
  /** Calls not sent because every connection stayed busy past the connect timeout; read by the scrape. */
  private final AtomicLong poolFullRefusals = new AtomicLong();

  /** Settings of the circuit breaker: trouble counted within a rolling window, and how long it stays open. */
  public record BreakerSettings(int maxFailures, Duration resetTimeout, Duration failuresWindow) {
    public static final BreakerSettings DEFAULT = new BreakerSettings(5, Duration.ofSeconds(5), Duration.ofSeconds(10));
  }

  public HttpProvider(Vertx vertx, String providerUrl, Duration timeout, BreakerSettings breakerSettings) {
    this(vertx, providerUrl, timeout, DEFAULT_MAX_CONNECTIONS, breakerSettings);
  }

  public HttpProvider(Vertx vertx, String providerUrl, Duration timeout, int maxConnections,
      BreakerSettings breakerSettings) {
    this.base = URI.create(providerUrl);
    if (!"http".equals(base.getScheme()) && !"https".equals(base.getScheme()) || base.getHost() == null) {
      throw new IllegalArgumentException("provider_url must be an http:// or https:// URL with a host");
    }
    String path = base.getRawPath() == null ? "" : base.getRawPath();
    this.basePath = path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
    this.timeoutMs = timeout.toMillis();
    this.connectTimeoutMs = Math.max(1, Math.min(MAX_CONNECT_TIMEOUT_MS, timeoutMs / 2));
    this.client = vertx.httpClientBuilder()
        .with(new HttpClientOptions().setKeepAlive(true).setKeepAliveTimeout(30).setConnectTimeout((int) connectTimeoutMs))
        .with(new PoolOptions().setHttp1MaxSize(maxConnections).setMaxWaitQueueSize(MAX_WAIT_QUEUE))
        // A connection the acquirer resets fails the call on it, which maps it (UNKNOWN once sent);
        // without a handler Vert.x also logs each reset at ERROR, an alert for a case handled here.
        .withConnectHandler(connection -> connection.exceptionHandler(failure ->
            log.debug("connection to the acquirer failed: {}", failure.toString())))
        .build();
    this.maxConnections = maxConnections;
    this.breakerResetNanos = breakerSettings.resetTimeout().toNanos();
    this.chargeBreaker = breaker(vertx, "idemgate-provider-http", breakerSettings)
        .openHandler(v -> {
          chargeCircuitOpenedAt = System.nanoTime();
          log.warn("provider circuit open: charges answer not-attempted without calling the acquirer");
        })
        .halfOpenHandler(v -> log.info("provider circuit half-open: letting one charge through"))
        .closeHandler(v -> log.info("provider circuit closed"));
    this.inquiryBreaker = breaker(vertx, "idemgate-provider-http-inquiries", breakerSettings)
        .openHandler(v -> log.warn("provider inquiry circuit open: outcomes stay unknown until the acquirer answers inquiries again"))
        .halfOpenHandler(v -> log.info("provider inquiry circuit half-open: letting one inquiry through"))
        .closeHandler(v -> log.info("provider inquiry circuit closed"));
  }

  private static CircuitBreaker breaker(Vertx vertx, String name, BreakerSettings settings) {
    return CircuitBreaker.create(name, vertx, new CircuitBreakerOptions()
        .setMaxFailures(settings.maxFailures())
        .setResetTimeout(settings.resetTimeout().toMillis())
        .setFailuresRollingWindow(settings.failuresWindow().toMillis())
        .setTimeout(-1) // deadlines are ours: a breaker timeout could not tell sent from unsent
        .setMaxRetries(0)
        .setFallbackOnFailure(false)
        .setNotificationAddress(null));
  }

  /** The connector for {@code provider: http}, with the default breaker. */
  public static HttpProvider create(Vertx vertx, GatewayConfig config) {
    return new HttpProvider(vertx, config.providerUrl().orElseThrow(), config.providerTimeout(),
        config.providerMaxConnections(), BreakerSettings.DEFAULT);
  }

  @Override
  public String name() {
    return "http";
  }

  /** The charges' circuit: open, half-open or closed; for health and tests. */
  public CircuitBreakerState circuitState() {
    return chargeBreaker.state();
  }

  /** The inquiries' circuit; for tests. */
  CircuitBreakerState inquiryCircuitState() {
    return inquiryBreaker.state();
  }

  @Override
  public Future<ProviderOutcome> charge(ChargeRequest request) {
    Buffer body = new JsonObject().put("amount", request.amount()).put("currency", request.currency())
        .put("source", request.source()).put("reference", request.reference()).toBuffer();
    RequestOptions options = requestOptions(HttpMethod.POST, "/charges")
        .putHeader("Idempotency-Key", request.providerKey())
        .putHeader("Content-Type", "application/json");
    return guarded(chargeBreaker, () -> exchange(options, body, request::maySend, ProviderOutcome.NotAttempted::new,
            (status, answer, retryAfter) -> mapCharge(status, answer, request.amount(), request.currency(), retryAfter)),
        new ProviderOutcome.NotAttempted("provider circuit open"))
        // Any refusal answered while the breaker is not closed (one it refused, the one whose failure
        // opened it, one that came back after it had) says when it lets a charge through again: the
        // client's retry would otherwise meet it at once. The later of that and the acquirer's own
        // Retry-After: a retry before either is refused again.
        .map(outcome -> outcome instanceof ProviderOutcome.NotAttempted refused
            && chargeBreaker.state() != CircuitBreakerState.CLOSED
            ? new ProviderOutcome.NotAttempted(refused.reason(),
                Math.max(refused.retryAfterSeconds(), secondsUntilTheBreakerTriesAgain()))
            : outcome);
  }

  /**
   * Whole seconds, rounded up and at least 1, until the charges' breaker lets a charge through again:
   * a client that waits that long has its retry sent to the acquirer instead of refused again here.
   * While it is half-open (one charge on trial) that is 1: the trial decides, within provider_timeout.
   */
  private int secondsUntilTheBreakerTriesAgain() {
    long left = breakerResetNanos - (System.nanoTime() - chargeCircuitOpenedAt);
    return (int) Math.max(1, (left + 999_999_999L) / 1_000_000_000L);
  }

  @Override
  public Future<ProviderOutcome> inquire(ChargeInquiry inquiry) {
    RequestOptions options = requestOptions(HttpMethod.GET,
        "/charges?idempotency_key=" + URLEncoder.encode(inquiry.providerKey(), StandardCharsets.UTF_8));
    // Only the acquirer's own answer ("requests": 0) may say that it never saw the charge. An
    // inquiry that never left this pod (no connection, or every one busy) says nothing about the
    // charge: read as "never seen", it would free the key for a second charge.
    return guarded(inquiryBreaker, () -> exchange(options, null, () -> true,
            reason -> new ProviderOutcome.Unknown("inquiry not sent: " + reason),
            (status, body, retryAfter) -> mapInquiry(status, body, inquiry, retryAfter)),
        new ProviderOutcome.Unknown("provider circuit open; inquiry not sent"));
  }

  /** Stops the client; calls still in flight fail, and are read as {@link ProviderOutcome.Unknown}. */
  public Future<Void> close() {
    chargeBreaker.close();
    inquiryBreaker.close();
    return client.close();
  }

  /** An outcome, and whether it counts against the acquirer's health in the circuit breaker. */
  record Answer(ProviderOutcome outcome, boolean trouble) {}

  /** A failed breaker call carrying the answer, so that trouble counts and the answer still reaches the caller. */
  private static final class Trouble extends RuntimeException {
    final transient ProviderOutcome outcome;

    Trouble(ProviderOutcome outcome) {
      super(null, null, false, false);
      this.outcome = outcome;
    }
  }

  private static Future<ProviderOutcome> guarded(CircuitBreaker breaker, Supplier<Future<Answer>> call,
      ProviderOutcome whenOpen) {
    return breaker.<ProviderOutcome>execute(() -> call.get().compose(answer -> answer.trouble()
            ? Future.failedFuture(new Trouble(answer.outcome()))
            : Future.succeededFuture(answer.outcome())))
        .recover(failure -> {
          if (failure instanceof Trouble trouble) {
            return Future.succeededFuture(trouble.outcome);
          } else if (failure instanceof OpenCircuitException) {
            return Future.succeededFuture(whenOpen);
          }
          // Not expected (the exchange never fails its Future); whatever it is, the charge may have gone out.
          return Future.succeededFuture(new ProviderOutcome.Unknown(failure.getClass().getSimpleName()));
        });
  }

  private RequestOptions requestOptions(HttpMethod method, String pathAndQuery) {
    boolean tls = "https".equals(base.getScheme());
    int port = base.getPort() > 0 ? base.getPort() : tls ? 443 : 80;
    return new RequestOptions().setMethod(method).setHost(base.getHost()).setPort(port).setSsl(tls)
        .setURI(basePath + pathAndQuery).setConnectTimeout(connectTimeoutMs);
  }

  /**
   * The answer from a status code, body and, for a 429 or 503, the acquirer's Retry-After in seconds
   * (0 when it gave none usable); called only once a response arrived.
   */
  @FunctionalInterface
  interface ResponseMapping {
    Answer map(int status, Buffer body, int retryAfterSeconds);
  }

  /**
   * One request and its response, split at the moment the request is handed a connection. Never fails.
   *
   * @param maySend asked once a connection is ready, right before anything is written: a charge whose
   *     send deadline (the claim's lease) passed while it waited for a connection is not sent at all
   * @param notSent what a request that never left this pod means, given why: for a charge nothing
   *     was attempted; for an inquiry nothing was learned
   */
  private Future<Answer> exchange(RequestOptions options, Buffer body, BooleanSupplier maySend,
      Function<String, ProviderOutcome> notSent, ResponseMapping mapping) {
    long startedAt = System.nanoTime();
    return client.request(options).transform(connected -> {
      if (connected.failed()) {
        // Every connection busy with other calls is this pod's load, not the acquirer's trouble:
        // counted, it would open the circuit and refuse every charge of a busy pod.
        boolean poolFull = holdingConnections >= maxConnections;
        if (poolFull) {
          poolFullRefusals.incrementAndGet();
        }
        return Future.succeededFuture(new Answer(notSent.apply((poolFull
            ? "every connection to the acquirer busy: " : "no connection to the acquirer: ")
            + connected.cause().getClass().getSimpleName()), !poolFull));
      }
      HttpClientRequest request = connected.result();
      holdingConnections = holdingConnections + 1; // single writer: the provider's event loop
      Future<Answer> answer = send(request, body, maySend, notSent, startedAt, mapping);
      answer.onComplete(done -> holdingConnections = holdingConnections - 1);
      return answer;
    });
  }

  /** Connections to the acquirer in use by a charge or an inquiry, of {@link #maxConnections()}. */
  public int busyConnections() {
    return holdingConnections;
  }

  public int maxConnections() {
    return maxConnections;
  }

  /** Charges and inquiries not sent so far because every connection stayed busy (answered not attempted). */
  public long poolFullRefusals() {
    return poolFullRefusals.get();
  }

  /** Sends a request that holds a connection, and reads its answer; never fails. */
  private Future<Answer> send(HttpClientRequest request, Buffer body, BooleanSupplier maySend,
      Function<String, ProviderOutcome> notSent, long startedAt, ResponseMapping mapping) {
    // Its failures reach the answer below; without a handler Vert.x also logs each at ERROR (our
    // own reset of a request never sent, or whose answer timed out or ran too long).
    request.exceptionHandler(failure -> log.debug("call to the acquirer failed: {}", failure.toString()));
    if (!maySend.getAsBoolean()) {
      request.reset();
      return Future.succeededFuture(new Answer(notSent.apply(
          "lease expired while waiting for a connection to the acquirer"), false));
    }
    long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startedAt);
    long leftMs = Math.max(1, timeoutMs - ANSWER_MARGIN_MS - elapsedMs);
    Future<Answer> answered = (body == null ? request.send() : request.send(body))
        .compose(response -> {
          if (response.statusCode() < 200) {
            // An interim answer (102 Processing, say): Vert.x hands on every 1xx but 100 and 103 as
            // the response, and would give the connection back once it "ended", so the final answer
            // coming after it would be read as the next request's on that connection: another
            // payment's charge taken for its own. The connection goes with it.
            request.connection().close();
            return Future.failedFuture(new InterimAnswer(response.statusCode()));
          }
          int status = response.statusCode();
          // Read only from a refusal that may carry it: a charge's answer costs no more.
          int retryAfter = status == 429 || status == 503
              ? AcquirerRetryAfter.seconds(response.headers().getAll("Retry-After"), response.getHeader("Date"), Instant.now())
              : 0;
          return boundedBody(response).map(b -> mapping.map(status, b, retryAfter));
        })
        .timeout(leftMs, TimeUnit.MILLISECONDS);
    return answered.recover(failure -> {
      // From here on the acquirer may have the request: a timeout or a reset is "may have charged".
      request.reset();
      return Future.succeededFuture(new Answer(new ProviderOutcome.Unknown(
          "no answer from the acquirer: " + failure.getClass().getSimpleName()), true));
    });
  }

  /** The answer's body, failed with {@link AnswerTooLarge} past {@value #MAX_ANSWER_BYTES} bytes. */
  private static Future<Buffer> boundedBody(HttpClientResponse response) {
    Promise<Buffer> read = Promise.promise();
    Buffer body = Buffer.buffer();
    response.exceptionHandler(read::tryFail);
    response.handler(chunk -> {
      if (body.length() + chunk.length() > MAX_ANSWER_BYTES) {
        read.tryFail(new AnswerTooLarge()); // the caller resets the request, which closes the connection
      } else if (!read.future().isComplete()) {
        body.appendBuffer(chunk);
      }
    });
    response.endHandler(end -> read.tryComplete(body));
    return read.future();
  }

  /** An interim (1xx) answer, the final one still to come: no answer yet. */
  private static final class InterimAnswer extends RuntimeException {
    InterimAnswer(int status) {
      super("interim answer " + status, null, false, false);
    }
  }

  /** An answer longer than any the protocol has. */
  private static final class AnswerTooLarge extends RuntimeException {
    AnswerTooLarge() {
      super("answer over " + MAX_ANSWER_BYTES + " bytes", null, false, false);
    }
  }

  /**
   * The one place a charge response becomes an outcome (see the class comment for the table).
   *
   * @param amount the amount asked for, in minor units
   * @param currency the currency asked for
   */
  static Answer mapCharge(int status, Buffer body, long amount, String currency) {
    return mapCharge(status, body, amount, currency, 0);
  }

  /** {@link #mapCharge(int, Buffer, long, String)}, with the acquirer's Retry-After in seconds (0: none) for a refusal. */
  static Answer mapCharge(int status, Buffer body, long amount, String currency, int retryAfterSeconds) {
    if (status >= 200 && status < 300) {
      JsonObject json = jsonOrNull(body);
      String chargeStatus = json == null ? null : json.getValue("status") instanceof String s ? s : null;
      Object id = json == null ? null : json.getValue("id");
      if (("succeeded".equals(chargeStatus) || "declined".equals(chargeStatus)) && id instanceof String && !storable(id)) {
        log.warn("the acquirer answered {} with a charge id that cannot be stored ({} characters, or control characters, or "
            + "half a surrogate pair): the outcome is left unknown for recovery and for an operator", chargeStatus,
            ((String) id).length());
        return new Answer(new ProviderOutcome.Unknown("acquirer answered a charge id that cannot be stored",
            ProviderOutcome.Heard.HAS_IT), false);
      }
      if (("succeeded".equals(chargeStatus) || "declined".equals(chargeStatus)) && id instanceof String
          && !asked(json, amount, currency)) {
        // Recorded as the payment's, it would tell the client that the amount it asked for was
        // charged (or declined) when the acquirer speaks of another charge.
        log.warn("the acquirer answered {} for a charge of another amount or currency than asked: the outcome is left "
            + "unknown for recovery and for an operator", chargeStatus);
        return new Answer(new ProviderOutcome.Unknown("acquirer answered a charge of another amount or currency",
            ProviderOutcome.Heard.OTHER_CHARGE), false);
      }
      if ("succeeded".equals(chargeStatus) && id instanceof String charge) {
        return new Answer(new ProviderOutcome.Succeeded(charge), false);
      } else if ("declined".equals(chargeStatus) && id instanceof String charge) {
        // A decline is certain whatever its code; a code that cannot be stored is replaced.
        String code = storable(json.getValue("decline_code")) ? json.getString("decline_code") : "declined";
        return new Answer(new ProviderOutcome.Declined(charge, code), false);
      }
      // A charge in another state (processing, say) is the acquirer's; an unreadable body is nobody's.
      return new Answer(new ProviderOutcome.Unknown("acquirer answered " + status + " without a final charge status",
          chargeStatus != null ? ProviderOutcome.Heard.HAS_IT : ProviderOutcome.Heard.NO_ANSWER), false);
    } else if (status == 429 || status == 503 && acquirerError(body)) {
      return new Answer(new ProviderOutcome.NotAttempted("acquirer refused before accepting (" + status + ")",
          retryAfterSeconds), true);
    } else if (status == 307 || status == 308) {
      // "Send it there instead": the request was not processed here.
      return new Answer(new ProviderOutcome.NotAttempted("the provider URL redirects (" + status + "): nothing was charged"), true);
    } else if (status >= 300 && status < 400) {
      // A 303 may answer a POST already processed (RFC 9110 9.3.3); 301/302 say nothing either way.
      return new Answer(new ProviderOutcome.Unknown("the provider URL redirects (" + status + ")"), true);
    } else if (status == 402) {
      // An acquirer that answers its declines with 402: read as a refusal, the client would get 502
      // "retry is safe" for a declined card, every retry alike. A decline that is not the payment's
      // (no charge id, another amount) charged nothing either, nor did a 402 without a charge
      // status. A 402 whose body speaks of a charge in any other state (succeeded or processing, of
      // any amount) contradicts itself: released as "nothing charged", a retry could charge the card
      // a second time, so it is left unknown.
      JsonObject json = jsonOrNull(body);
      Object chargeStatus = json == null ? null : json.getValue("status");
      if ("declined".equals(chargeStatus) && json.getValue("id") instanceof String && asked(json, amount, currency)) {
        return mapCharge(200, body, amount, currency);
      } else if (!(chargeStatus instanceof String) || "declined".equals(chargeStatus)) {
        return new Answer(new ProviderOutcome.NotAttempted("acquirer rejected the request (402)"), false);
      }
      log.warn("the acquirer answered 402 with a charge that is not declined: the outcome is left unknown for recovery "
          + "and for an operator");
      return new Answer(new ProviderOutcome.Unknown("acquirer answered 402 with a charge that is not declined",
          ProviderOutcome.Heard.HAS_IT), false);
    } else if (status == 409) {
      return new Answer(new ProviderOutcome.Unknown("acquirer is still processing this provider key (409)"), false);
    } else if (status >= 400 && status < 500) {
      return new Answer(new ProviderOutcome.NotAttempted("acquirer rejected the request (" + status + ")"), false);
    }
    return new Answer(new ProviderOutcome.Unknown("acquirer answered " + status), status >= 500);
  }

  /**
   * A string the ledger can hold as it is: 1 to {@value #MAX_REFERENCE_CHARS} characters, none a
   * control character or half a surrogate pair.
   */
  public static boolean storable(Object value) {
    return value instanceof String s && !s.isEmpty() && s.length() <= MAX_REFERENCE_CHARS
        // codePoints() joins each surrogate pair; one left alone would be stored as '?'
        && s.codePoints().noneMatch(c -> Character.isISOControl(c) || Character.getType(c) == Character.SURROGATE);
  }

  /**
   * Whether a charge's {@code amount} and {@code currency} are the ones asked for, or not given (the
   * protocol does not require them). The currency's case is not compared: some acquirers answer
   * ISO 4217 codes in lower case.
   */
  private static boolean asked(JsonObject charge, long amount, String currency) {
    Object answeredAmount = charge.getValue("amount");
    Object answeredCurrency = charge.getValue("currency");
    return (answeredAmount == null
            || answeredAmount instanceof Number n && n.longValue() == amount && n.doubleValue() == amount)
        && (answeredCurrency == null || answeredCurrency instanceof String c && c.equalsIgnoreCase(currency));
  }

  /**
   * Whether a body is the acquirer's own error, {@code {"error": "code"}} with a code of lower-case
   * letters, digits and underscores, not a page from something in between. A mere string is not
   * enough: Spring Boot's error page, which a Spring Cloud Gateway in front of the acquirer sends
   * after it forwarded the charge, holds {@code "error": "Service Unavailable"}; read as "not
   * attempted" it would release the key of a payment that may have been charged.
   */
  private static boolean acquirerError(Buffer body) {
    JsonObject json = jsonOrNull(body);
    return json != null && json.getValue("error") instanceof String code && ERROR_CODE.matcher(code).matches();
  }

  /**
   * An inquiry response. NOT_ATTEMPTED only when the acquirer never saw a request under the key
   * ({@code requests} 0 and no charge); a request seen but not yet charged is still being processed
   * and may charge any moment, so it is UNKNOWN. With charges, a succeeded one decides (money moved,
   * whatever else the list holds), else one not settled (processing, or a success the ledger cannot
   * hold) leaves it UNKNOWN, else one of another amount or currency than asked does (heard
   * {@link ProviderOutcome.Heard#OTHER_CHARGE}), else the last one. An
   * answer about another key (a proxy that dropped the query string, say) and anything but a
   * readable 200 are UNKNOWN: such an inquiry proves nothing.
   */
  static Answer mapInquiry(int status, Buffer body, ChargeInquiry inquiry) {
    return mapInquiry(status, body, inquiry, 0);
  }

  /**
   * {@link #mapInquiry(int, Buffer, ChargeInquiry)}, with the acquirer's Retry-After in seconds (0:
   * none), read for a 429 or 503 as on a charge ({@link AcquirerRetryAfter}), with or without the
   * acquirer's error body: an inquiry charges nothing, so waiting as a proxy's 503 asks is safe too.
   * It goes with the unknown outcome, so that recovery does not ask again sooner.
   */
  static Answer mapInquiry(int status, Buffer body, ChargeInquiry inquiry, int retryAfterSeconds) {
    String providerKey = inquiry.providerKey();
    if (status != 200) {
      return new Answer(new ProviderOutcome.Unknown("inquiry answered " + status, ProviderOutcome.Heard.NO_ANSWER,
          retryAfterSeconds), status >= 500 || status == 429 || status >= 300 && status < 400);
    }
    JsonObject json = jsonOrNull(body);
    JsonArray charges = json == null ? null : json.getValue("charges") instanceof JsonArray a ? a : null;
    if (charges == null) {
      return new Answer(new ProviderOutcome.Unknown("inquiry answer without a charge list"), false);
    }
    if (!providerKey.equals(json.getValue("idempotency_key"))) {
      return new Answer(new ProviderOutcome.Unknown("inquiry answer is not about the key asked for"), false);
    }
    if (charges.isEmpty()) {
      Object requests = json.getValue("requests");
      if (!(requests instanceof Number seen)) {
        return new Answer(new ProviderOutcome.Unknown("acquirer does not say whether it saw the key (it may have "
            + "forgotten it)", ProviderOutcome.Heard.CANNOT_TELL), false);
      }
      if (seen.longValue() != 0) {
        return new Answer(new ProviderOutcome.Unknown("acquirer has the request but no charge yet",
            ProviderOutcome.Heard.HAS_IT), false);
      }
      return new Answer(new ProviderOutcome.NotAttempted("acquirer never saw this provider key"), false);
    }
    // Several charges under one key (an acquirer that does not deduplicate, or lists every attempt):
    // a succeeded one decides; else one that is not settled (still processing, or a success the
    // ledger cannot hold) leaves the whole answer unknown, whatever else is listed: a decline beside
    // it would record 402 for a key under which money moved or may still move. Then one of another
    // amount or currency (unknown too, but it lets an operator close the payment as declined, which
    // a charge still processing beside it must not). Else the last one.
    Answer succeeded = null;
    Answer unsettled = null;
    Answer otherCharge = null;
    Answer last = null;
    for (Object entry : charges) {
      if (!(entry instanceof JsonObject charge)
          || charge.containsKey("idempotency_key") && !providerKey.equals(charge.getValue("idempotency_key"))) {
        return new Answer(new ProviderOutcome.Unknown("unreadable charge, or another key's, in inquiry answer"), false);
      }
      Answer answer = mapCharge(200, charge.toBuffer(), inquiry.amount(), inquiry.currency());
      if (answer.outcome() instanceof ProviderOutcome.Succeeded) {
        succeeded = succeeded == null ? answer : succeeded;
      } else if (answer.outcome() instanceof ProviderOutcome.Unknown u && u.heard() == ProviderOutcome.Heard.OTHER_CHARGE) {
        otherCharge = otherCharge == null ? answer : otherCharge;
      } else if (answer.outcome() instanceof ProviderOutcome.Unknown) {
        unsettled = unsettled == null ? answer : unsettled;
      }
      last = answer;
    }
    return succeeded != null ? succeeded : unsettled != null ? unsettled : otherCharge != null ? otherCharge : last;
  }

  private static JsonObject jsonOrNull(Buffer body) {
    try {
      return body == null || body.length() == 0 ? null : body.toJsonObject();
    } catch (RuntimeException e) {
      return null;
    }
  }
}
