package dev.idemgate.observability;

import ch.qos.logback.classic.LoggerContext;
import dev.idemgate.auth.MerchantKeys;
import dev.idemgate.idempotency.IdempotencyStore;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.vertx.core.Future;
import java.time.Duration;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.slf4j.LoggerFactory;

/**
 * The gateway's own meters, named {@code idemgate.<feature>.<thing>} (Prometheus:
 * {@code idemgate_<feature>_<thing>_...}). Every tag has a closed set of values: an outcome, an
 * operation, an action. Never a key, an amount, a merchant or a reference.
 */
public final class GatewayMetrics {
  /** The operations {@link #timeStore} is called with. */
  private static final String[] STORE_OPERATIONS = {"held", "claim", "complete"};

  /** The outcomes {@link #providerCall} is called with (ProviderClient#outcomeName). */
  private static final String[] PROVIDER_OUTCOMES = {"succeeded", "declined", "not_attempted", "unknown"};

  /** Outcome tag of {@code idemgate.requests}. */
  public enum RequestOutcome {
    CREATED, DECLINED, PENDING, REPLAYED,
    /** 409 idempotency_key_in_use while the key's holder is answering: a concurrent twin, a retry sent too soon. */
    IN_FLIGHT_CONFLICT,
    /**
     * 409 idempotency_key_in_use for a claim older than a live holder takes (or past its lease): its
     * holder is presumed gone (a dead or hung pod), and the answer waits for recovery. Kept apart
     * from {@link #IN_FLIGHT_CONFLICT}, whose rise means retry storms or a client misbehaving.
     */
    IN_FLIGHT_AWAITING_RECOVERY,
    KEY_REUSED, PROVIDER_UNAVAILABLE, STORE_UNAVAILABLE, REJECTED,
    DUPLICATE_SUSPECTED,
    /** Past the merchant's {@code rate_limit}: 429, nothing read, claimed or charged. */
    RATE_LIMITED,
    /** The connection closed before the answer was sent; the payment itself carries on, and a retry gets its answer. */
    CLIENT_CLOSED,
    /** 500 internal_error: a failure no step of the payment path expected (a bug, or data the code never writes). */
    INTERNAL_ERROR
  }

  /**
   * The bucket boundaries of {@code idemgate_request_latency_seconds}, the same for every outcome.
   * A fixed set, not Micrometer's percentile-histogram ladder: that one has 68 boundaries between
   * 1 ms and 30 s, and with 13 outcomes (every one registered at start) it made 936 series per pod
   * for this one meter; these 14 make 18 per outcome (14 buckets, +Inf, _count, _sum and _max), 252
   * for the 14 outcomes there are now.
   * They follow the 1-2.5-5 steps of Prometheus's own default buckets, with what a payment API
   * needs to tell apart:
   * <ul>
   *   <li>1 ms: a replay from the in-process cache (well under a millisecond) against one read
   *       from Redis or PostgreSQL (a round trip or two). No boundary below it: Java writes 0.0005
   *       as {@code le="5.0E-4"}, which a query written {@code le="0.0005"} matches on Prometheus 3
   *       only (below);
   *   <li>2.5, 5 and 10 ms: 409s, 422s, refusals, replays from the store, a new payment's commit;
   *   <li>25 ms to 500 ms: new payments through an acquirer; 500 ms is {@code redis_timeout}'s default;
   *   <li>1, 2.5 and 5 s: slow acquirers, the wait for a provider connection (up to 2 s), and
   *       {@code store_timeout}'s default, 5 s;
   *   <li>10 s: {@code provider_timeout}'s default and the longest {@code Prefer: wait};
   *   <li>30 s: {@code request_body_timeout} and {@code lease}; past it only +Inf.
   * </ul>
   * A request that waited out one of those timeouts ends just past its boundary, so the buckets keep
   * it apart from the requests answered in time. A quantile is interpolated within its bucket, so it
   * is known to within that bucket (a p99 read as 180 ms lies between 100 and 250 ms). Hazard: an
   * alert or SLO query on this meter must use one of these values as its threshold ({@code le}),
   * or it compares against an interpolation; {@code KubernetesManifestsTest} and
   * {@code GrafanaDashboardTest} check the shipped ones, docs/operations.md lists the values.
   */
  public static final List<Duration> REQUEST_LATENCY_BOUNDARIES =
      millis(1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000);

  /*
   * The gate, store and provider histograms below have fixed buckets too, each on the same 1-2.5-5
   * steps, from what its call takes when all is well to the default timeout of that call, the last
   * boundary. Micrometer's ladder, before, gave each 68 boundaries from 1 ms to 30 s (72 series per
   * label value: 360 per pod after a few payments, 576 with every label value); these make 121, all
   * there from start-up. None is below 1 ms: Java writes 0.0005 as le="5.0E-4", which Prometheus 2
   * stores as it is and Prometheus 3 stores as le="0.0005" (it rewrites le values on ingestion), so
   * an le matcher on it would select nothing on one of the two. From 1 ms up both write the same
   * string as Java. Hazard: an alert or panel threshold on one of these meters must be one of its
   * boundaries; KubernetesManifestsTest and GrafanaDashboardTest check the shipped ones.
   */

  /**
   * Buckets of {@code idemgate_gate_latency_seconds}, the Redis gate's claim. Redis answers in
   * 0.1-0.3 ms, so a healthy gate sits in the first bucket, under 1 ms: its quantiles there are
   * interpolations (a p50 of 0.5 ms says "under 1 ms", nothing finer). 1 to 10 ms is a busy Redis,
   * a slow network or a busy event loop; 25 to 250 ms eats the latency budget (the alert
   * IdemgateGateLatencyHigh is at 0.25 s); 0.5 s is {@code redis_timeout}'s default, so a claim that
   * waited it out counts in {@code +Inf} only. 9 buckets, 13 series for the one step.
   */
  public static final List<Duration> GATE_LATENCY_BOUNDARIES = millis(1, 2.5, 5, 10, 25, 50, 100, 250, 500);

  /**
   * Buckets of {@code idemgate_store_latency_seconds}, one PostgreSQL call: a millisecond or a few
   * for a statement, tens of ms when a grouped statement waits for its group or a connection,
   * seconds when PostgreSQL is in trouble, and 5 s, {@code store_timeout}'s default: a call that
   * waited it out counts in {@code +Inf} only. 12 buckets, 16 series per operation, 48 for the three.
   */
  public static final List<Duration> STORE_LATENCY_BOUNDARIES =
      millis(1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000);

  /**
   * Buckets of {@code idemgate_provider_latency_seconds}, one provider call: acquirers answer in
   * tens to hundreds of ms, slow ones in seconds; the wait for a connection is up to 2 s; 10 s is
   * {@code provider_timeout}'s default (the call gives up a little before it). Under 5 ms are only
   * calls not sent (breaker open, connection refused) and the in-process simulator. 11 buckets, 15
   * series per outcome, 60 for the four.
   */
  public static final List<Duration> PROVIDER_LATENCY_BOUNDARIES =
      millis(5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000);

  /** One of the latency histograms: its name, its one tag and its buckets. */
  private record LatencyMeter(String name, String description, String tagKey, List<Duration> boundaries) {}

  private static final LatencyMeter REQUEST_LATENCY = new LatencyMeter("idemgate.request.latency",
      "POST /pay from its first byte to its answer, by outcome", "outcome", REQUEST_LATENCY_BOUNDARIES);
  private static final LatencyMeter GATE_LATENCY =
      new LatencyMeter("idemgate.gate.latency", "Redis gate step", "step", GATE_LATENCY_BOUNDARIES);
  private static final LatencyMeter STORE_LATENCY =
      new LatencyMeter("idemgate.store.latency", "PostgreSQL store call", "operation", STORE_LATENCY_BOUNDARIES);
  private static final LatencyMeter PROVIDER_LATENCY =
      new LatencyMeter("idemgate.provider.latency", "provider charge by outcome", "outcome", PROVIDER_LATENCY_BOUNDARIES);

  private final MeterRegistry registry;
  private final Tracing tracing;
  private final AtomicInteger inFlight = new AtomicInteger();
  // Meters are looked up once, not per request: a registry lookup allocates and hashes an id.
  private final Map<RequestOutcome, Counter> requests = new EnumMap<>(RequestOutcome.class);
  private final Map<RequestOutcome, Timer> requestLatency = new EnumMap<>(RequestOutcome.class);
  private final AtomicInteger connections = new AtomicInteger();
  private final Map<String, Timer> timers = new ConcurrentHashMap<>();
  private final Map<String, Counter> storeErrors = new ConcurrentHashMap<>();
  private final Timer gateTimer;
  private final Counter replayCacheHits;
  private final Map<String, Counter> rateLimited = new java.util.HashMap<>();
  private final Counter providerReferenceReused;

  public GatewayMetrics(MeterRegistry registry, Tracing tracing) {
    this.registry = registry;
    this.tracing = tracing;
    Gauge.builder("idemgate.inflight.requests", inFlight, AtomicInteger::get)
        .description("POST /pay requests being processed by this instance").register(registry);
    Gauge.builder("idemgate.http.connections", connections, AtomicInteger::get)
        .description("client connections open on the API port (HTTP/1.1 and HTTP/2 alike)").register(registry);
    for (RequestOutcome outcome : RequestOutcome.values()) {
      requests.put(outcome, Counter.builder("idemgate.requests").tag("outcome", tag(outcome))
          .description("POST /pay requests by outcome").register(registry));
      requestLatency.put(outcome, latencyTimer(REQUEST_LATENCY, tag(outcome)));
    }
    gateTimer = timer(GATE_LATENCY, "claim");
    replayCacheHits = Counter.builder("idemgate.replay.cache.hits")
        .description("replays answered from the in-process replay cache (also counted as replayed requests)")
        .register(registry);
    // Every store operation's error counter exists from the start, at 0: a counter that appears at its
    // first failure hides that failure from rate() (and the alert on it), and reads "no data" until then.
    // The same goes for the latency histograms: every operation's and provider outcome's exists from
    // the start, empty, so that their series do not come and go with the traffic.
    for (String operation : STORE_OPERATIONS) {
      storeErrors(operation);
      timer(STORE_LATENCY, operation);
    }
    for (String outcome : PROVIDER_OUTCOMES) {
      timer(PROVIDER_LATENCY, outcome);
    }
    for (String route : new String[] {"pay", "get_payment"}) {
      rateLimited.put(route, Counter.builder("idemgate.rate.limited").tag("route", route)
          .description("requests refused with 429 rate_limited, payments and reads").register(registry));
    }
    providerReferenceReused = providerReferenceReused(registry, "request");
    if (LoggerFactory.getILoggerFactory() instanceof LoggerContext logback) {
      watchLogWriter(registry, logback);
    }
  }

  /**
   * {@code idemgate_provider_reference_reused_total{path}}: payments left pending because the
   * acquirer answered a charge id the ledger already holds as another succeeded payment's, on the request
   * path ({@code request}) or when recovery asked again ({@code recovery}). Any increase is for an
   * operator: the acquirer may be answering a second order with the first one's charge.
   */
  public static Counter providerReferenceReused(MeterRegistry registry, String path) {
    return Counter.builder("idemgate.provider.reference.reused").tag("path", path)
        .description("payments left pending: the acquirer answered a charge id that is already another payment's")
        .register(registry);
  }

  public void providerReferenceReused() {
    providerReferenceReused.increment();
  }

  /**
   * Log lines the log writer dropped because its queue was full ({@link BatchingStdoutAppender}).
   * The counter reads {@code logback} itself, which logback's LoggerFactory holds for the life of the
   * process (a function counter holds its object weakly).
   */
  static void watchLogWriter(MeterRegistry registry, LoggerContext logback) {
    FunctionCounter.builder("idemgate.log.lines.dropped", logback, BatchingStdoutAppender::droppedLines)
        .description("log lines dropped, not written, because the log writer fell behind").register(registry);
  }

  /**
   * The API keys in force, and how many versions of {@code api_keys_file} were refused. Hazard: a
   * function counter holds its object weakly, so it reads {@code keys} itself, which every API
   * verticle holds, and never a lambda that nothing else holds (it would be collected and the
   * counter would read nothing).
   */
  public void watchApiKeys(MerchantKeys keys) {
    Gauge.builder("idemgate.api.keys", keys, MerchantKeys::size)
        .description("API keys in force: api_keys and api_keys_file").register(registry);
    FunctionCounter.builder("idemgate.api.keys.file.refused", keys, MerchantKeys::refusedVersions)
        .description("versions of api_keys_file refused (did not parse) or reads of it that failed; the keys before stay")
        .register(registry);
  }

  /** Shows how many answers {@code entries} holds now, as {@code idemgate_replay_cache_entries}. */
  public void watchReplayCache(java.util.function.Supplier<Number> entries) {
    Gauge.builder("idemgate.replay.cache.entries", entries).description("completed answers in the in-process replay cache")
        .register(registry);
  }

  public void replayCacheHit() {
    replayCacheHits.increment();
  }

  /** @param route {@code pay} or {@code get_payment} */
  public void rateLimited(String route) {
    rateLimited.get(route).increment();
  }

  public MeterRegistry registry() {
    return registry;
  }

  public void requestStarted() {
    inFlight.incrementAndGet();
  }

  /** A POST /pay has ended: counted and timed under its outcome. */
  public void requestEnded(RequestOutcome outcome, long latencyNanos) {
    inFlight.decrementAndGet();
    requests.get(outcome).increment();
    requestLatency.get(outcome).record(latencyNanos, TimeUnit.NANOSECONDS);
  }

  /** Counts a client connection on the API port until it closes. */
  public void connectionOpened() {
    connections.incrementAndGet();
  }

  public void connectionClosed() {
    connections.decrementAndGet();
  }

  /** Times the Redis gate's atomic step, in a span of its own. */
  public <T> Future<T> timeGate(Supplier<Future<T>> call) {
    return time(tracing.span("idemgate.gate", call), gateTimer);
  }

  /** Runs a provider call in a span of its own (its latency is recorded by {@link #providerCall}). */
  public <T> Future<T> traceProvider(Supplier<Future<T>> call) {
    return tracing.span("idemgate.provider.charge", call);
  }

  /** Times one store operation (claim, complete) in a span, and counts its failures. */
  public <T> Future<T> timeStore(String operation, Supplier<Future<T>> call) {
    long start = System.nanoTime();
    return tracing.span("idemgate.store." + operation, call).onComplete(done -> {
      timer(STORE_LATENCY, operation).record(Duration.ofNanos(System.nanoTime() - start));
      if (done.failed()) {
        storeErrors(operation).increment();
      }
    });
  }

  private Counter storeErrors(String operation) {
    return storeErrors.computeIfAbsent(operation, op -> Counter.builder("idemgate.store.errors").tag("operation", op)
        .description("PostgreSQL store calls that failed or timed out").register(registry));
  }

  /**
   * Payments per grouped claim or completion statement ({@code idemgate_store_group_payments}):
   * how well the request path's writes share statements and commits. Its mean is
   * {@code rate(..._sum) / rate(..._count)}.
   */
  public IdempotencyStore.GroupSizes storeGroupSizes() {
    Map<String, DistributionSummary> summaries = Map.of("claim", groupSummary("claim"), "complete", groupSummary("complete"));
    return (operation, payments) -> summaries.get(operation).record(payments);
  }

  private DistributionSummary groupSummary(String operation) {
    return DistributionSummary.builder("idemgate.store.group.payments").tag("operation", operation)
        .description("payments carried by one grouped claim or completion statement")
        .serviceLevelObjectives(1, 2, 4, 8, 16, 32, 64, 128, 256)
        .register(registry);
  }

  /** Records a provider call's latency under its outcome. */
  public void providerCall(String outcome, long startNanos) {
    timer(PROVIDER_LATENCY, outcome).record(Duration.ofNanos(System.nanoTime() - startNanos));
  }

  private <T> Future<T> time(Future<T> call, Timer timer) {
    long start = System.nanoTime();
    return call.onComplete(done -> timer.record(Duration.ofNanos(System.nanoTime() - start)));
  }

  private Timer timer(LatencyMeter meter, String tagValue) {
    return timers.computeIfAbsent(meter.name() + '|' + tagValue, id -> latencyTimer(meter, tagValue));
  }

  private Timer latencyTimer(LatencyMeter meter, String tagValue) {
    return Timer.builder(meter.name()).tag(meter.tagKey(), tagValue).description(meter.description())
        .publishPercentileHistogram(false)
        .serviceLevelObjectives(meter.boundaries().toArray(Duration[]::new))
        .register(registry);
  }

  /** Bucket boundaries given in milliseconds. */
  private static List<Duration> millis(double... boundaries) {
    return Arrays.stream(boundaries).mapToObj(millis -> Duration.ofNanos(Math.round(millis * 1_000_000))).toList();
  }

  private static String tag(Enum<?> value) {
    return value.name().toLowerCase(Locale.ROOT);
  }
}
