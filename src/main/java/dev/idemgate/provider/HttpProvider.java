package dev.idemgate.provider;

import dev.idemgate.config.GatewayConfig;
import io.vertx.circuitbreaker.CircuitBreaker;
import io.vertx.circuitbreaker.CircuitBreakerOptions;
import io.vertx.circuitbreaker.CircuitBreakerState;
import io.vertx.circuitbreaker.OpenCircuitException;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
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
 *   <li>2xx with {@code status: succeeded | declined} → SUCCEEDED / DECLINED; a 2xx it cannot read → UNKNOWN
 *       (the acquirer accepted something).</li>
 *   <li>503 and 429 → NOT_ATTEMPTED: the acquirer refuses before accepting (503 is the protocol's
 *       "down before acceptance"; 429 is a rate limit).</li>
 *   <li>409 → UNKNOWN: the acquirer is still processing a request under the same provider key, which may charge.</li>
 *   <li>any other 4xx (400, 401, 404, 422 …) → NOT_ATTEMPTED: the acquirer refused the request as it
 *       stands; retrying it unchanged would fail again, but nothing was charged.</li>
 *   <li>any other 5xx (500, 502, 504 …) and anything else → UNKNOWN: an error after acceptance, or a
 *       proxy that gave up waiting, may hide a charge.</li>
 * </ul>
 *
 * <p>The circuit breaker opens after repeated provider trouble (transport failures, 5xx, 429), not on
 * refusals of a bad request. While it is open a charge is answered NOT_ATTEMPTED without sending
 * anything, and an inquiry UNKNOWN (an inquiry that did not happen proves nothing). It never retries:
 * a charge is sent at most once per call.
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

  private final URI base;
  private final String basePath;
  private final long timeoutMs;
  private final long connectTimeoutMs;
  private final HttpClientAgent client;
  private final CircuitBreaker breaker;

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
    this.client = vertx.createHttpClient(
        new HttpClientOptions().setKeepAlive(true).setKeepAliveTimeout(30).setConnectTimeout((int) connectTimeoutMs),
        new PoolOptions().setHttp1MaxSize(maxConnections).setMaxWaitQueueSize(MAX_WAIT_QUEUE));
    this.breaker = CircuitBreaker.create("idemgate-provider-http", vertx, new CircuitBreakerOptions()
            .setMaxFailures(breakerSettings.maxFailures())
            .setResetTimeout(breakerSettings.resetTimeout().toMillis())
            .setFailuresRollingWindow(breakerSettings.failuresWindow().toMillis())
            .setTimeout(-1) // deadlines are ours: a breaker timeout could not tell sent from unsent
            .setMaxRetries(0)
            .setFallbackOnFailure(false)
            .setNotificationAddress(null))
        .openHandler(v -> log.warn("provider circuit open: charges answer not-attempted without calling the acquirer"))
        .halfOpenHandler(v -> log.info("provider circuit half-open: letting one call through"))
        .closeHandler(v -> log.info("provider circuit closed"));
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

  /** Open, half-open or closed; for health and tests. */
  public CircuitBreakerState circuitState() {
    return breaker.state();
  }

  @Override
  public Future<ProviderOutcome> charge(ChargeRequest request) {
    Buffer body = new JsonObject().put("amount", request.amount()).put("currency", request.currency())
        .put("source", request.source()).put("reference", request.reference()).toBuffer();
    RequestOptions options = requestOptions(HttpMethod.POST, "/charges")
        .putHeader("Idempotency-Key", request.providerKey())
        .putHeader("Content-Type", "application/json");
    return guarded(() -> exchange(options, body, request::maySend, HttpProvider::mapCharge),
        new ProviderOutcome.NotAttempted("provider circuit open"));
  }

  @Override
  public Future<ProviderOutcome> inquire(String providerKey) {
    RequestOptions options = requestOptions(HttpMethod.GET,
        "/charges?idempotency_key=" + URLEncoder.encode(providerKey, StandardCharsets.UTF_8));
    return guarded(() -> exchange(options, null, () -> true, HttpProvider::mapInquiry)
            .map(answer -> answer.outcome() instanceof ProviderOutcome.NotAttempted && answer.trouble()
                // The inquiry itself did not happen: that says nothing about the charge.
                ? new Answer(new ProviderOutcome.Unknown("inquiry not sent"), true)
                : answer),
        new ProviderOutcome.Unknown("provider circuit open; inquiry not sent"));
  }

  /** Stops the client; calls still in flight fail, and are read as {@link ProviderOutcome.Unknown}. */
  public Future<Void> close() {
    breaker.close();
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

  private Future<ProviderOutcome> guarded(Supplier<Future<Answer>> call, ProviderOutcome whenOpen) {
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

  /** The answer from a status code and body; called only once a response arrived. */
  @FunctionalInterface
  interface ResponseMapping {
    Answer map(int status, Buffer body);
  }

  /**
   * One request and its response, split at the moment the request is handed a connection. Never fails.
   *
   * @param maySend asked once a connection is ready, right before anything is written: a charge whose
   *     send deadline (the claim's lease) passed while it waited for a connection is not sent at all
   */
  private Future<Answer> exchange(RequestOptions options, Buffer body, BooleanSupplier maySend, ResponseMapping mapping) {
    long startedAt = System.nanoTime();
    return client.request(options).transform(connected -> {
      if (connected.failed()) {
        return Future.succeededFuture(new Answer(new ProviderOutcome.NotAttempted(
            "no connection to the acquirer: " + connected.cause().getClass().getSimpleName()), true));
      }
      HttpClientRequest request = connected.result();
      if (!maySend.getAsBoolean()) {
        request.reset();
        return Future.succeededFuture(new Answer(new ProviderOutcome.NotAttempted(
            "lease expired while waiting for a connection to the acquirer"), false));
      }
      long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startedAt);
      long leftMs = Math.max(1, timeoutMs - ANSWER_MARGIN_MS - elapsedMs);
      Future<Answer> answered = (body == null ? request.send() : request.send(body))
          .compose(response -> response.body().map(b -> mapping.map(response.statusCode(), b)))
          .timeout(leftMs, TimeUnit.MILLISECONDS);
      return answered.recover(failure -> {
        // From here on the acquirer may have the request: a timeout or a reset is "may have charged".
        request.reset();
        return Future.succeededFuture(new Answer(new ProviderOutcome.Unknown(
            "no answer from the acquirer: " + failure.getClass().getSimpleName()), true));
      });
    });
  }

  /** The one place a charge response becomes an outcome (see the class comment for the table). */
  static Answer mapCharge(int status, Buffer body) {
    if (status >= 200 && status < 300) {
      JsonObject json = jsonOrNull(body);
      String chargeStatus = json == null ? null : json.getValue("status") instanceof String s ? s : null;
      String id = json == null ? null : json.getValue("id") instanceof String s ? s : null;
      if ("succeeded".equals(chargeStatus) && id != null) {
        return new Answer(new ProviderOutcome.Succeeded(id), false);
      } else if ("declined".equals(chargeStatus) && id != null) {
        String code = json.getValue("decline_code") instanceof String s ? s : "declined";
        return new Answer(new ProviderOutcome.Declined(id, code), false);
      }
      return new Answer(new ProviderOutcome.Unknown("acquirer answered " + status + " without a charge status"), false);
    } else if (status == 503 || status == 429) {
      return new Answer(new ProviderOutcome.NotAttempted("acquirer refused before accepting (" + status + ")"), true);
    } else if (status == 409) {
      return new Answer(new ProviderOutcome.Unknown("acquirer is still processing this provider key (409)"), false);
    } else if (status >= 400 && status < 500) {
      return new Answer(new ProviderOutcome.NotAttempted("acquirer rejected the request (" + status + ")"), false);
    }
    return new Answer(new ProviderOutcome.Unknown("acquirer answered " + status), status >= 500);
  }

  /**
   * An inquiry response: the last charge under the key decides. NOT_ATTEMPTED only when the acquirer
   * never saw a request under the key ({@code requests} 0 and no charge); a request seen but not yet
   * charged is still being processed and may charge any moment, so it is UNKNOWN. Anything but a
   * readable 200 is UNKNOWN too: a failed inquiry proves nothing.
   */
  static Answer mapInquiry(int status, Buffer body) {
    if (status != 200) {
      return new Answer(new ProviderOutcome.Unknown("inquiry answered " + status), status >= 500 || status == 429);
    }
    JsonObject json = jsonOrNull(body);
    JsonArray charges = json == null ? null : json.getValue("charges") instanceof JsonArray a ? a : null;
    if (charges == null) {
      return new Answer(new ProviderOutcome.Unknown("inquiry answer without a charge list"), false);
    }
    if (charges.isEmpty()) {
      Object requests = json.getValue("requests");
      if (!(requests instanceof Number seen) || seen.longValue() != 0) {
        return new Answer(new ProviderOutcome.Unknown("acquirer has the request but no charge yet"), false);
      }
      return new Answer(new ProviderOutcome.NotAttempted("acquirer never saw this provider key"), false);
    }
    Answer last = charges.getValue(charges.size() - 1) instanceof JsonObject charge
        ? mapCharge(200, charge.toBuffer())
        : null;
    return last != null ? last : new Answer(new ProviderOutcome.Unknown("unreadable charge in inquiry answer"), false);
  }

  private static JsonObject jsonOrNull(Buffer body) {
    try {
      return body == null || body.length() == 0 ? null : body.toJsonObject();
    } catch (RuntimeException e) {
      return null;
    }
  }
}
