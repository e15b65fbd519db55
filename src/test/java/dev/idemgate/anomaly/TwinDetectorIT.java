package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.payment.ClaimGuard;
import dev.idemgate.payment.ClaimGuard.KeyFate;
import dev.idemgate.payment.PaymentRequest;
import dev.idemgate.payment.PaymentService;
import dev.idemgate.storage.Migrations;
import dev.idemgate.storage.PipelinedRedis;
import dev.idemgate.storage.Postgres;
import dev.idemgate.storage.RedisClients;
import dev.idemgate.support.FaultProxy;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisOptions;
import io.vertx.redis.client.Request;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The twin check against the real Redis: what counts as a twin, what never does, and failure. */
class TwinDetectorIT {
  private static Vertx vertx;
  private static Redis redis;
  private static PipelinedRedis pipeline;
  private static Pool pool;

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
    redis = Redis.createClient(vertx, new RedisOptions().setConnectionString(TestGateway.redisUrl()).setMaxPoolSize(32));
    pipeline = new PipelinedRedis(redis, vertx.getOrCreateContext());
    // The ledger lookup needs the tables, whether or not a gateway has started in this JVM before.
    Migrations.migrate(TestGateway.pgUrl());
    pool = Postgres.pool(vertx, TestGateway.config(Map.of()), 2, "twin-detector-test");
    // Connect before the first check: its 250 ms budget is meant for commands, not for a cold connection.
    Http.await(redis.send(io.vertx.redis.client.Request.cmd(io.vertx.redis.client.Command.PING)));
  }

  @AfterAll
  static void stop() {
    Http.await(pipeline.close());
    Http.await(redis.close());
    Http.await(pool.close());
    Http.await(vertx.close());
  }

  private static TwinDetector detector(String policy, String window) {
    return detector(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", policy, "IDEMGATE_DUPLICATE_WINDOW", window));
  }

  private static TwinDetector detector(Map<String, String> settings) {
    GatewayConfig config = TestGateway.config(settings);
    return new AnomalyMonitor(config, new SimpleMeterRegistry(), TwinRateJudge.Settings.defaults()).detector(pipeline, redis, pool);
  }

  private static PaymentRequest payment(String source) {
    return new PaymentRequest(1999, "EUR", source, "order-" + UUID.randomUUID(), null, null);
  }

  private static TwinVerdict observe(TwinDetector detector, String merchant, String key, PaymentRequest request) {
    return observe(detector, merchant, key, request, MultiMap.caseInsensitiveMultiMap().add("X-Client-Id", "it"));
  }

  private static TwinVerdict observe(TwinDetector detector, String merchant, String key, PaymentRequest request,
      MultiMap headers) {
    return Http.await(detector.observe(merchant, new IdempotencyKey(key), request, headers));
  }

  private static String merchant() {
    return "m_" + UUID.randomUUID().toString().substring(0, 8);
  }

  @Test
  @DisplayName("the same key sent again is never a twin, however often it is retried")
  void sameKeyIsNeverATwin() {
    TwinDetector detector = detector("flag", "10m");
    String merchant = merchant();
    PaymentRequest request = payment("tok_visa");
    assertThat(observe(detector, merchant, "k1", request)).isInstanceOf(TwinVerdict.First.class);
    for (int i = 0; i < 5; i++) {
      assertThat(observe(detector, merchant, "k1", request)).isInstanceOf(TwinVerdict.SameKey.class);
    }
  }

  @Test
  @DisplayName("the same payment under another key is a twin of the original; its own retries are not counted again")
  void newKeyIsATwin() {
    TwinDetector detector = detector("flag", "10m");
    String merchant = merchant();
    PaymentRequest request = payment("tok_visa");
    long before = System.currentTimeMillis();
    assertThat(observe(detector, merchant, "k1", request)).isInstanceOf(TwinVerdict.First.class);
    TwinVerdict twin = observe(detector, merchant, "k2", request);
    assertThat(twin).isInstanceOf(TwinVerdict.Allowed.class);
    TwinVerdict.Twin pair = ((TwinVerdict.Allowed) twin).twin();
    assertThat(pair.originalAtMillis()).isBetween(before, System.currentTimeMillis());
    assertThat(pair.originalKeyHash()).isEqualTo(PaymentTwins.keyHash(merchant, new IdempotencyKey("k1")));
    assertThat(observe(detector, merchant, "k2", request)).isInstanceOf(TwinVerdict.SameKey.class);
  }

  @Test
  @DisplayName("a payment that is no twin costs one command on the verticle's pipeline: the detector's own "
      + "connection is opened only for the first twin")
  void plainChecksUseThePipeline() {
    TwinDetector detector = detector("flag", "10m");
    String merchant = merchant();
    PaymentRequest request = payment("tok_visa");
    for (int i = 0; i < 20; i++) {
      PaymentRequest another = payment("tok_" + i);
      assertThat(observe(detector, merchant, "k" + i, another)).isInstanceOf(TwinVerdict.First.class);
      assertThat(observe(detector, merchant, "k" + i, another)).isInstanceOf(TwinVerdict.SameKey.class);
    }
    assertThat(detector.ownConnectionInUse()).isFalse();
    assertThat(observe(detector, merchant, "first", request)).isInstanceOf(TwinVerdict.First.class);
    assertThat(observe(detector, merchant, "second", request)).isInstanceOf(TwinVerdict.Allowed.class);
    assertThat(detector.ownConnectionInUse()).isTrue();
  }

  @Test
  @DisplayName("a twin checked as the detector's own connection is closed for being idle still gets its verdict")
  void aTwinAsTheOwnConnectionClosesIsJudged() {
    Duration readIdle = Duration.ofMillis(400);
    Redis closingIdle = Redis.createClient(vertx, RedisClients.closingIdleConnections(
        new RedisOptions().setConnectionString(TestGateway.redisUrl()).setMaxPoolSize(4), readIdle));
    PipelinedRedis quietOnes = new PipelinedRedis(closingIdle, vertx.getOrCreateContext(), false,
        RedisClients.reuseLimit(readIdle));
    // The pipeline is kept busy, so that a twin's SET goes out at once and its script follows it on
    // the detector's own connection a fraction of a millisecond later, as the read-idle close comes.
    long keepBusy = vertx.setPeriodic(50, t -> quietOnes.send(Request.cmd(Command.PING)));
    try {
      GatewayConfig flag = TestGateway.config(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "flag"));
      TwinDetector detector = new AnomalyMonitor(flag,
          new SimpleMeterRegistry(), TwinRateJudge.Settings.defaults()).detector(quietOnes, closingIdle, pool);
      String merchant = merchant();
      PaymentRequest request = payment("tok_visa");
      assertThat(observe(detector, merchant, "original", request)).isInstanceOf(TwinVerdict.First.class);
      List<String> verdicts = new ArrayList<>();
      for (long quietMs : new long[] {readIdle.toMillis() - 3, readIdle.toMillis() - 2, readIdle.toMillis() - 1}) {
        MultiMap headers = MultiMap.caseInsensitiveMultiMap().add("X-Client-Id", "it");
        Waits.afterQuiet(vertx.getOrCreateContext(), quietMs, 10,
                () -> detector.observe(merchant, new IdempotencyKey("twin-" + UUID.randomUUID()), request, headers))
            .forEach(verdict -> verdicts.add(
                verdict.succeeded() ? verdict.result().getClass().getSimpleName() : "failed"));
      }
      assertThat(verdicts).as("verdicts of twins checked 397-399 ms after the last one").hasSize(30)
          .allMatch(verdict -> verdict.equals("Allowed"));
    } finally {
      vertx.cancelTimer(keepBusy);
      Http.await(quietOnes.close());
      Http.await(closingIdle.close());
    }
  }

  @Test
  @DisplayName("same amount and currency from another customer's token is not a twin, nor is another merchant's payment")
  void similarPaymentsAreNotTwins() {
    TwinDetector detector = detector("flag", "10m");
    String merchant = merchant();
    PaymentRequest request = payment("tok_visa");
    PaymentRequest otherCustomer = new PaymentRequest(1999, "EUR", "tok_other_customer", request.merchantReference(), null, null);
    assertThat(observe(detector, merchant, "k1", request)).isInstanceOf(TwinVerdict.First.class);
    assertThat(observe(detector, merchant, "k2", otherCustomer)).isInstanceOf(TwinVerdict.First.class);
    assertThat(observe(detector, merchant(), "k3", request)).isInstanceOf(TwinVerdict.First.class);
  }

  @Test
  @DisplayName("policy reject refuses a twin, keeps refusing its retries, and lets a declared repeat through")
  void rejectAndOverride() {
    TwinDetector detector = detector("reject", "10m");
    String merchant = merchant();
    PaymentRequest request = payment("tok_visa");
    observe(detector, merchant, "k1", request);
    assertThat(observe(detector, merchant, "k2", request)).isInstanceOf(TwinVerdict.Reject.class);
    assertThat(observe(detector, merchant, "k2", request)).isInstanceOf(TwinVerdict.Reject.class);
    MultiMap intended = MultiMap.caseInsensitiveMultiMap().add(TwinDetector.REPEAT_HEADER, "intended");
    // The refused key sent again as intended goes through (as on the payment path, DuplicateRejectIT).
    assertThat(observe(detector, merchant, "k2", request, intended)).isInstanceOfSatisfying(TwinVerdict.Allowed.class,
        allowed -> assertThat(allowed.intended()).isTrue());
    assertThat(observe(detector, merchant, "k3", request, intended)).isInstanceOf(TwinVerdict.Allowed.class);
  }

  @Test
  @DisplayName("policy reject refuses a twin of an original with no ledger row while it may still be charged (in "
      + "flight, or past its lease on an instance that died), and lets it through once recovery would have "
      + "released it (nothing was charged)")
  void releasedOriginalDoesNotBlock() {
    // Recorded or released, at the latest, after the claim's statement, the lease, recovery's grace
    // (provider timeout + 1 s), a pass, the inquiry and the statement that records it:
    // 0.5 + 2 + 1.5 + 0.5 + 0.5 + 0.5 = 5.5 s.
    TwinDetector detector = detector(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "reject", "IDEMGATE_LEASE", "2s",
        "IDEMGATE_PROVIDER_TIMEOUT", "500ms", "IDEMGATE_RECOVERY_INTERVAL", "500ms", "IDEMGATE_STORE_TIMEOUT", "500ms"));
    String merchant = merchant();
    PaymentRequest request = payment("tok_provider_down");
    observe(detector, merchant, "k1", request);
    TwinVerdict inFlight = observe(detector, merchant, "k2", request);
    assertThat(inFlight).isInstanceOf(TwinVerdict.Reject.class);
    assertThat(((TwinVerdict.Reject) inFlight).twin().originalPaymentId()).isNull();
    Http.await(vertx.timer(2_100));
    assertThat(observe(detector, merchant, "k3", request)).as("past the lease, before any release")
        .isInstanceOf(TwinVerdict.Reject.class);
    Http.await(vertx.timer(3_600));
    assertThat(observe(detector, merchant, "k4", request)).isInstanceOf(TwinVerdict.Allowed.class);
  }

  @Test
  @DisplayName("policy reject: a twin let through because its original was declined becomes the one to compare "
      + "with, so a twin of it is refused once it is charged; a request under the declined original's key is "
      + "judged against it too (its key may have been released; if it is held, the payment path replays it)")
  void anAllowedTwinIsTheNextOriginal() {
    TwinDetector detector = detector("reject", "10m");
    String merchant = merchant();
    try {
      allowedTwinBecomesTheAnchor(detector, merchant);
    } finally {
      deleteLedger(merchant);
    }
  }

  private static void allowedTwinBecomesTheAnchor(TwinDetector detector, String merchant) {
    PaymentRequest request = payment("tok_visa");
    observe(detector, merchant, "k1", request);
    ledgerRow(merchant, "k1", "declined", request);
    assertThat(observe(detector, merchant, "k2", request)).as("the original was declined").isInstanceOf(TwinVerdict.Allowed.class);
    ledgerRow(merchant, "k2", "succeeded", request);

    TwinVerdict third = observe(detector, merchant, "k3", request);
    assertThat(third).isInstanceOf(TwinVerdict.Reject.class);
    assertThat(((TwinVerdict.Reject) third).twin().originalPaymentId()).isEqualTo(paymentId(merchant, "k2"));
    assertThat(observe(detector, merchant, "k2", request)).isInstanceOf(TwinVerdict.SameKey.class);
    TwinVerdict underTheOldKey = observe(detector, merchant, "k1", request);
    assertThat(underTheOldKey).isInstanceOf(TwinVerdict.Reject.class);
    assertThat(((TwinVerdict.Reject) underTheOldKey).twin().originalPaymentId()).isEqualTo(paymentId(merchant, "k2"));
  }

  @Test
  @DisplayName("policy reject: a twin refused while its original was in flight, sent again as intended once the "
      + "original was declined, becomes the one to compare with, so a later twin is refused against it")
  void aRefusedTwinSentAsIntendedIsTheNextOriginal() {
    TwinDetector detector = detector("reject", "10m");
    String merchant = merchant();
    PaymentRequest request = payment("tok_visa");
    MultiMap intended = client().add(TwinDetector.REPEAT_HEADER, "intended");
    try {
      observe(detector, merchant, "k1", request);
      assertThat(observe(detector, merchant, "k2", request)).as("the original in flight, no ledger row yet")
          .isInstanceOf(TwinVerdict.Reject.class);
      ledgerRow(merchant, "k1", "declined", request);
      TwinVerdict repeat = observe(detector, merchant, "k2", request, intended);
      assertThat(repeat).isInstanceOf(TwinVerdict.Allowed.class);
      assertThat(((TwinVerdict.Allowed) repeat).intended()).isTrue();
      ledgerRow(merchant, "k2", "succeeded", request);

      TwinVerdict third = observe(detector, merchant, "k3", request);
      assertThat(third).as("judged against the charged repeat, not the declined original").isInstanceOf(TwinVerdict.Reject.class);
      assertThat(((TwinVerdict.Reject) third).twin().originalPaymentId()).isEqualTo(paymentId(merchant, "k2"));
    } finally {
      deleteLedger(merchant);
    }
  }

  /** Removes the merchant's ledger rows a test wrote. */
  private static void deleteLedger(String merchant) {
    Http.await(pool.preparedQuery("DELETE FROM idemgate.payments WHERE merchant_id = $1").execute(Tuple.of(merchant)));
  }

  /** The ledger row a completed payment under {@code key} leaves (its first-generation provider key). */
  private static void ledgerRow(String merchant, String key, String status, PaymentRequest request) {
    ledgerRow(merchant, key, status, request, "now()");
  }

  private static void ledgerRow(String merchant, String key, String status, PaymentRequest request, String createdAt) {
    Http.await(pool.preparedQuery("INSERT INTO idemgate.payments (id, merchant_id, provider_key, amount, currency, status, "
        + "merchant_reference, provider, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'simulator', " + createdAt + ")")
        .execute(Tuple.of(paymentId(merchant, key), merchant, PaymentTwins.keyHash(merchant, new IdempotencyKey(key)),
            request.amount(), request.currency(), status, request.merchantReference())));
  }

  @Test
  @DisplayName("policy reject: a ledger row of another payment under the original's key (this one got 422 there), or one "
      + "of an earlier generation of a reused key, does not decide the twin")
  void ledgerRowMustBeThisPayment() {
    TwinDetector detector = detector("reject", "10m");
    String merchant = merchant();
    try {
      PaymentRequest request = payment("tok_visa");
      PaymentRequest other = new PaymentRequest(5000, "EUR", "tok_visa", "order-other", null, null);
      observe(detector, merchant, "k1", request);
      ledgerRow(merchant, "k1", "succeeded", other); // k1 holds another payment: this one was never claimed there
      assertThat(observe(detector, merchant, "k2", request)).isInstanceOf(TwinVerdict.Allowed.class);

      String merchant2 = merchant();
      observe(detector, merchant2, "k1", request);
      // A declined first generation of k1, two days old: today's k1 may be charging this payment now.
      ledgerRow(merchant2, "k1", "declined", request, "now() - interval '2 days'");
      assertThat(observe(detector, merchant2, "k2", request)).isInstanceOf(TwinVerdict.Reject.class);
      deleteLedger(merchant2);

      // A pending original older than its anchor (a retry of it re-stored the anchor after the window):
      // still refuses, though the anchor is past the 66 s in which a missing row would.
      String merchant3 = merchant();
      TwinDetector shortWait = detector(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "reject", "IDEMGATE_LEASE", "2s",
          "IDEMGATE_PROVIDER_TIMEOUT", "200ms", "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_STORE_TIMEOUT", "200ms"));
      observe(shortWait, merchant3, "k1", request);
      ledgerRow(merchant3, "k1", "pending", request, "now() - interval '12 minutes'");
      Http.await(vertx.timer(4_500)); // past 0.2 + 2 + 1.2 + 0.2 + 0.2 + 0.2 = 4.0 s
      assertThat(observe(shortWait, merchant3, "k2", request)).isInstanceOf(TwinVerdict.Reject.class);
      deleteLedger(merchant3);
    } finally {
      deleteLedger(merchant);
    }
  }

  @Test
  @DisplayName("policy reject: of two twins arriving together after a declined original, one goes through and the other is refused")
  void concurrentTwinsOfADeclinedOriginal() {
    TwinDetector detector = detector("reject", "10m");
    String merchant = merchant();
    try {
      PaymentRequest request = payment("tok_visa");
      observe(detector, merchant, "k1", request);
      ledgerRow(merchant, "k1", "declined", request);
      var second = detector.observe(merchant, new IdempotencyKey("k2"), request, MultiMap.caseInsensitiveMultiMap());
      var third = detector.observe(merchant, new IdempotencyKey("k3"), request, MultiMap.caseInsensitiveMultiMap());
      List<TwinVerdict> verdicts = List.of(Http.await(second), Http.await(third));
      assertThat(verdicts).filteredOn(v -> v instanceof TwinVerdict.Allowed).hasSize(1);
      assertThat(verdicts).filteredOn(v -> v instanceof TwinVerdict.Reject).hasSize(1);
    } finally {
      deleteLedger(merchant);
    }
  }

  private static String paymentId(String merchant, String key) {
    return "pay_" + PaymentTwins.keyHash(merchant, new IdempotencyKey(key)).substring(0, 32);
  }

  @Test
  @DisplayName("after the duplicate window the same payment is new again")
  void windowExpires() {
    // 3 s: k2 must reach Redis within the window of k1, which a pause of a loaded machine could outlast at 1 s.
    TwinDetector detector = detector("reject", "3s");
    String merchant = merchant();
    PaymentRequest request = payment("tok_visa");
    observe(detector, merchant, "k1", request);
    assertThat(observe(detector, merchant, "k2", request)).isInstanceOf(TwinVerdict.Reject.class);
    Http.await(vertx.timer(3_200));
    assertThat(observe(detector, merchant, "k3", request)).isInstanceOf(TwinVerdict.First.class);
  }

  @Test
  @DisplayName("Redis unreachable, refusing or silent: no verdict and never a failure; a silent one is given up on at the "
      + "check's own cap (250 ms), not the longer redis_timeout")
  void redisDownGivesNoVerdict() {
    // Refused: the check fails at once (the budget plays no part).
    assertThat(observeThrough("redis://127.0.0.1:" + TestGateway.freePort())).as("ms until no verdict from a refusing Redis")
        .isLessThan(TwinDetector.MAX_CHECK_MS + Waits.LATE_MS);
    // Silent: only the cap ends the check, never sooner; with redis_timeout at 30 s, nothing else could end it in time.
    java.net.URI target = java.net.URI.create(TestGateway.redisUrl());
    try (FaultProxy silent = FaultProxy.start(target.getHost(), target.getPort())) {
      silent.blackhole();
      assertThat(observeThrough(TestGateway.redisUrl().replace(":" + target.getPort(), ":" + silent.port())))
          .as("ms until no verdict from a silent Redis")
          .isGreaterThanOrEqualTo(TwinDetector.MAX_CHECK_MS).isLessThan(TwinDetector.MAX_CHECK_MS + Waits.LATE_MS);
    }
  }

  /** Checks a payment against the Redis at {@code url} (redis_timeout 30 s), wanting no verdict; the ms it took. */
  private static long observeThrough(String url) {
    Redis unreachable = Redis.createClient(vertx, new RedisOptions().setConnectionString(url));
    PipelinedRedis unreachablePipeline = new PipelinedRedis(unreachable, vertx.getOrCreateContext());
    try {
      GatewayConfig config = TestGateway.config(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "reject",
          "IDEMGATE_REDIS_TIMEOUT", "30s"));
      TwinDetector detector = new AnomalyMonitor(config, new SimpleMeterRegistry(), TwinRateJudge.Settings.defaults())
          .detector(unreachablePipeline, unreachable, pool);
      long started = System.nanoTime();
      assertThat(observe(detector, merchant(), "k1", payment("tok_visa"))).isInstanceOf(TwinVerdict.Unobserved.class);
      return (System.nanoTime() - started) / 1_000_000;
    } finally {
      Http.await(unreachablePipeline.close());
      Http.await(unreachable.close());
    }
  }

  @Test
  @DisplayName("after a failed check (Redis connection reset, reconnect refused) the next checks are skipped for a "
      + "second, without touching Redis, then resume")
  void failedCheckPausesChecks() throws Exception {
    java.net.URI target = java.net.URI.create(TestGateway.redisUrl());
    try (FaultProxy proxy = FaultProxy.start(target.getHost(), target.getPort())) {
      String viaProxy = TestGateway.redisUrl().replace(":" + target.getPort(), ":" + proxy.port());
      Redis client = Redis.createClient(vertx, new RedisOptions().setConnectionString(viaProxy));
      PipelinedRedis throughProxy = new PipelinedRedis(client, vertx.getOrCreateContext());
      try {
        GatewayConfig config = TestGateway.config(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "flag"));
        TwinDetector detector = new AnomalyMonitor(config, new SimpleMeterRegistry(), TwinRateJudge.Settings.defaults())
            .detector(throughProxy, client, pool);
        String merchant = merchant();
        assertThat(observe(detector, merchant, "k1", payment("tok_1"))).isInstanceOf(TwinVerdict.First.class);
        proxy.refuse();
        proxy.cutAll();
        assertThat(observe(detector, merchant, "k2", payment("tok_2"))).isInstanceOf(TwinVerdict.Unobserved.class);
        proxy.pass();
        long connections = proxy.acceptedConnections();
        assertThat(observe(detector, merchant, "k3", payment("tok_3"))).isInstanceOf(TwinVerdict.Unobserved.class);
        assertThat(proxy.acceptedConnections()).as("no reconnect while paused").isEqualTo(connections);
        Http.await(vertx.timer(TwinDetector.RECONNECT_BACKOFF_MS + 100));
        assertThat(observe(detector, merchant, "k4", payment("tok_4"))).isInstanceOf(TwinVerdict.First.class);
        assertThat(proxy.acceptedConnections()).isGreaterThan(connections);
      } finally {
        Http.await(throughProxy.close());
        Http.await(client.close());
      }
    }
  }

  @Test
  @DisplayName("policy off spends nothing: no Redis call, no verdict")
  void offIsFree() {
    TwinDetector detector = detector("off", "10m");
    assertThat(observe(detector, merchant(), "k1", payment("tok_visa"))).isInstanceOf(TwinVerdict.Unobserved.class);
  }

  /** A detector under these settings, and the monitor it counts into. */
  private record Counted(TwinDetector detector, AnomalyMonitor monitor, SimpleMeterRegistry registry) {
    static Counted under(String policy) {
      SimpleMeterRegistry registry = new SimpleMeterRegistry();
      AnomalyMonitor monitor = new AnomalyMonitor(TestGateway.config(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", policy)),
          registry, TwinRateJudge.Settings.defaults());
      return new Counted(monitor.detector(pipeline, redis, pool), monitor, registry);
    }

    /** One request's guard: checks the payment, and returns the guard to be told what became of its key. */
    ClaimGuard checked(String merchant, String key, PaymentRequest request, MultiMap headers) {
      ClaimGuard guard = detector.guard(headers);
      Http.await(guard.check(command(merchant, key, request)));
      return guard;
    }

    /** One request of a client checked, then told by PostgreSQL what became of its key. */
    void settled(String merchant, String key, PaymentRequest request, KeyFate fate) {
      checked(merchant, key, request, client()).keySettled(command(merchant, key, request), fate);
    }

    /** The payments counted for the one client these tests send as, or 0 before it has any. */
    long payments(String merchant) {
      var clients = monitor.judge().shown(merchant, 10).clients();
      assertThat(clients).hasSizeLessThanOrEqualTo(1);
      return clients.isEmpty() ? 0 : clients.get(0).payments();
    }

    /** Twin checks counted with this result ({@code idemgate.anomaly.checks}). */
    double checks(String result) {
      return registry.counter("idemgate.anomaly.checks", "result", result).count();
    }

    /** The Redis key of the anchor of this payment's payload. */
    String anchorKey(String merchant, PaymentRequest request) {
      return TwinDetector.redisKey(merchant, PaymentTwins.fingerprint(monitor.config().duplicateFields(), request));
    }

    List<JsonObject> pairs(String merchant) {
      return monitor.view(merchant, 200).getJsonArray("recent_twins").stream().map(JsonObject.class::cast).toList();
    }
  }

  private static PaymentService.PayCommand command(String merchant, String key, PaymentRequest request) {
    return new PaymentService.PayCommand(merchant, new IdempotencyKey(key), request, "fingerprint", null, null);
  }

  private static MultiMap client() {
    return MultiMap.caseInsensitiveMultiMap().add("X-Client-Id", "it");
  }

  @Test
  @DisplayName("a twin whose payment was not taken (its claim failed: 503; or the provider did not charge it: 502) "
      + "counts nothing; the retry of its key that takes the key counts it once, and a retry after that none")
  void aTwinCountsWhenItsKeyIsTaken() {
    Counted flag = Counted.under("flag");
    String merchant = merchant();
    PaymentRequest request = payment("tok_visa");
    flag.settled(merchant, "k1", request, KeyFate.NEW);

    flag.settled(merchant, "k2", request, KeyFate.NOT_TAKEN);
    assertThat(flag.pairs(merchant)).as("a twin whose claim failed").isEmpty();
    flag.settled(merchant, "k2", request, KeyFate.NEW);
    assertThat(flag.pairs(merchant)).as("its retry, which took the key").singleElement()
        .satisfies(pair -> assertThat(pair.getString("key_hash"))
            .isEqualTo(PaymentTwins.keyHash(merchant, new IdempotencyKey("k2"))));
    flag.settled(merchant, "k2", request, KeyFate.HELD);
    assertThat(flag.pairs(merchant)).as("a retry of the key it holds").hasSize(1);
    assertThat(flag.monitor.judge().shown(merchant, 10).clients()).singleElement()
        .satisfies(standing -> assertThat(standing.twins()).isEqualTo(1));
  }

  @Test
  @DisplayName("a first payment of its payload counts as a payment of its client only when its key is new: the retry of "
      + "a key PostgreSQL holds, whose anchor Redis no longer has (its window ran out, or Redis lost it), is the same "
      + "key again; one not taken counts nothing, and the retry that takes its key counts once")
  void aFirstPaymentCountsOnlyWhenItsKeyIsNew() {
    for (String policy : List.of("reject", "flag")) {
      Counted counted = Counted.under(policy);
      String merchant = merchant();
      PaymentRequest request = payment("tok_visa");
      counted.settled(merchant, "k1", request, KeyFate.NEW);
      Http.await(redis.send(Request.cmd(Command.DEL).arg(counted.anchorKey(merchant, request))));
      counted.settled(merchant, "k1", request, KeyFate.HELD);
      assertThat(counted.payments(merchant)).as(policy + ": the held key's retry").isEqualTo(1);

      PaymentRequest other = payment("tok_mastercard");
      counted.settled(merchant, "k2", other, KeyFate.NOT_TAKEN);
      assertThat(counted.payments(merchant)).as(policy + ": a first payment not taken").isEqualTo(1);
      // The anchor is given up on a connection of its own: the retry's check must not overtake it.
      Waits.eventually(Duration.ofSeconds(5), () -> anchor(counted.anchorKey(merchant, other)) == null,
          policy + ": the anchor is given up");
      counted.settled(merchant, "k2", other, KeyFate.NEW);
      assertThat(counted.payments(merchant)).as(policy + ": its retry, which took the key").isEqualTo(2);
      assertThat(counted.checks("first")).as(policy + ": firsts").isEqualTo(2.0);
      assertThat(counted.checks("same_key")).as(policy + ": same key").isEqualTo(1.0);
    }
  }

  @Test
  @DisplayName("a payment whose first request's fate was never heard (it ended in a 500), its anchor left standing, "
      + "counts as a payment of its client when a retry of its key takes the key, and a retry after that as the same key")
  void aRetryThatTakesItsAnchoringKeyCountsAsItsPayment() {
    for (String policy : List.of("reject", "flag")) {
      Counted counted = Counted.under(policy);
      String merchant = merchant();
      PaymentRequest request = payment("tok_visa");
      counted.checked(merchant, "k1", request, client()); // no fate: the request ended in a 500
      assertThat(counted.payments(merchant)).as(policy + ": nothing counted yet").isZero();
      counted.settled(merchant, "k1", request, KeyFate.NEW);
      assertThat(counted.payments(merchant)).as(policy + ": the retry that took the key").isEqualTo(1);
      counted.settled(merchant, "k1", request, KeyFate.HELD);
      assertThat(counted.payments(merchant)).as(policy + ": a retry of the key it holds").isEqualTo(1);
      assertThat(counted.checks("first")).as(policy + ": firsts").isEqualTo(1.0);
      assertThat(counted.checks("same_key")).as(policy + ": same key").isEqualTo(1.0);
    }
  }

  @Test
  @DisplayName("a first payment not taken (its claim failed: 503; or the provider did not charge it: 502) gives up its "
      + "place as the original, also under flag, where PostgreSQL may answer before the check does: the same payment "
      + "under a new key is then no twin")
  void aFirstPaymentNotTakenGivesUpItsPlace() {
    for (String policy : List.of("reject", "flag")) {
      Counted counted = Counted.under(policy);
      String merchant = merchant();
      PaymentRequest request = payment("tok_visa");
      String anchorKey = TwinDetector.redisKey(merchant, PaymentTwins.fingerprint(counted.monitor.config().duplicateFields(),
          request));
      ClaimGuard guard = counted.detector.guard(client());
      PaymentService.PayCommand k1 = command(merchant, "k1", request);
      // As under flag, where the claim runs beside the check: told before the check's answer has come back.
      var checked = guard.check(k1);
      guard.keySettled(k1, KeyFate.NOT_TAKEN);
      Http.await(checked);
      Waits.eventually(Duration.ofSeconds(5), () -> anchor(anchorKey) == null, policy + ": the anchor is given up");

      counted.settled(merchant, "k2", request, KeyFate.NEW);
      assertThat(anchor(anchorKey)).as(policy).startsWith(keyHash(merchant, "k2") + "|");
      assertThat(counted.pairs(merchant)).as(policy + ": no twin of a payment that does not exist").isEmpty();
    }
  }

  @Test
  @DisplayName("a twin of an original that charged nothing (declined) is a payment of its client, not a twin held against "
      + "it, under either policy: trying a declined payment again under a new key is what a client should do; a twin of "
      + "the payment that then charged still counts, judged against that one")
  void aTwinOfADeclinedOriginalIsNotHeldAgainstItsClient() {
    for (String policy : List.of("reject", "flag")) {
      Counted counted = Counted.under(policy);
      String merchant = merchant();
      PaymentRequest request = payment("tok_visa");
      try {
        counted.settled(merchant, "k1", request, KeyFate.NEW);
        ledgerRow(merchant, "k1", "declined", request);
        counted.settled(merchant, "k2", request, KeyFate.NEW);
        assertThat(counted.pairs(merchant)).as(policy + ": the twin of the declined original is shown").singleElement()
            .satisfies(pair -> assertThat(pair.getString("outcome")).isEqualTo("allowed"));
        assertThat(counted.monitor.judge().shown(merchant, 10).clients()).as(policy).singleElement()
            .satisfies(standing -> {
              assertThat(standing.twins()).as(policy + ": twins held against the client").isZero();
              assertThat(standing.payments()).as(policy + ": payments").isEqualTo(2);
            });

        ledgerRow(merchant, "k2", "succeeded", request);
        counted.settled(merchant, "k3", request, KeyFate.NEW);
        assertThat(counted.pairs(merchant)).as(policy + ": a twin of the charged payment").hasSize(2).first()
            .satisfies(pair -> {
              assertThat(pair.getString("outcome")).isEqualTo(policy.equals("reject") ? "rejected" : "flagged");
              assertThat(pair.getString("original_key_hash")).isEqualTo(keyHash(merchant, "k2"));
            });
        assertThat(counted.monitor.judge().shown(merchant, 10).clients()).singleElement()
            .satisfies(standing -> assertThat(standing.twins()).as(policy + ": twins held against the client").isEqualTo(1));
      } finally {
        deleteLedger(merchant);
      }
    }
  }

  @Test
  @DisplayName("two requests of one new twin key racing each other count the twin once, whichever takes the key")
  void racingRequestsOfATwinKeyCountItOnce() {
    for (boolean laterTakesIt : new boolean[] {true, false}) {
      Counted flag = Counted.under("flag");
      String merchant = merchant();
      PaymentRequest request = payment("tok_visa");
      flag.settled(merchant, "k1", request, KeyFate.NEW);
      // Both past the gate (Redis lost the key, or only pointed to PostgreSQL): both judged, one claim takes the key.
      ClaimGuard earlier = flag.checked(merchant, "k2", request, client());
      ClaimGuard later = flag.checked(merchant, "k2", request, client());
      earlier.keySettled(command(merchant, "k2", request), laterTakesIt ? KeyFate.HELD : KeyFate.NEW);
      later.keySettled(command(merchant, "k2", request), laterTakesIt ? KeyFate.NEW : KeyFate.HELD);
      assertThat(flag.pairs(merchant)).as(laterTakesIt ? "the later one took the key" : "the earlier one took the key")
          .hasSize(1);
    }
  }

  @Test
  @DisplayName("policy reject: a twin let through because its original was declined, whose claim then failed, gives "
      + "the anchor back to the original; its retry is judged again, takes the anchor, and counts once")
  void aTwinNotTakenGivesTheAnchorBack() {
    Counted reject = Counted.under("reject");
    String merchant = merchant();
    PaymentRequest request = payment("tok_visa");
    try {
      reject.settled(merchant, "k1", request, KeyFate.NEW);
      ledgerRow(merchant, "k1", "declined", request);
      String anchorKey = TwinDetector.redisKey(merchant, PaymentTwins.fingerprint(reject.monitor.config().duplicateFields(),
          request));
      String original = anchor(anchorKey);

      ClaimGuard failed = reject.checked(merchant, "k2", request, client());
      assertThat(anchor(anchorKey)).as("the twin took the anchor").startsWith(keyHash(merchant, "k2") + "|");
      failed.keySettled(command(merchant, "k2", request), KeyFate.NOT_TAKEN);
      Waits.eventually(Duration.ofSeconds(5), () -> original.equals(anchor(anchorKey)),
          "the anchor goes back to the declined original");
      assertThat(reject.pairs(merchant)).isEmpty();

      ClaimGuard retry = reject.checked(merchant, "k2", request, client());
      assertThat(anchor(anchorKey)).as("the retry takes the anchor again").startsWith(keyHash(merchant, "k2") + "|");
      retry.keySettled(command(merchant, "k2", request), KeyFate.NEW);
      assertThat(reject.pairs(merchant)).singleElement().satisfies(pair -> {
        assertThat(pair.getString("key_hash")).isEqualTo(keyHash(merchant, "k2"));
        assertThat(pair.getString("outcome")).isEqualTo("allowed");
      });
      ledgerRow(merchant, "k2", "succeeded", request);
      TwinVerdict third = observe(reject.detector, merchant, "k3", request);
      assertThat(third).isInstanceOf(TwinVerdict.Reject.class);
      assertThat(((TwinVerdict.Reject) third).twin().originalPaymentId()).isEqualTo(paymentId(merchant, "k2"));
    } finally {
      deleteLedger(merchant);
    }
  }

  @Test
  @DisplayName("policy reject: a refusal answered 503 (the held-key lookup failed) counts nothing; its retry, "
      + "refused, counts once, and further retries none")
  void aRefusalAnswered503CountsOnItsRetry() {
    Counted reject = Counted.under("reject");
    String merchant = merchant();
    PaymentRequest request = payment("tok_visa");
    reject.settled(merchant, "k1", request, KeyFate.NEW);
    String twinKeys = TwinDetector.twinKeysKey(merchant, PaymentTwins.fingerprint(reject.monitor.config().duplicateFields(),
        request));

    reject.settled(merchant, "k2", request, KeyFate.NOT_TAKEN);
    assertThat(reject.pairs(merchant)).as("a refusal answered 503").isEmpty();
    Waits.eventually(Duration.ofSeconds(5), () -> Http.await(redis.send(
        Request.cmd(Command.HEXISTS).arg(twinKeys).arg(keyHash(merchant, "k2")))).toInteger() == 0,
        "the refused mark of k2 is given back");
    for (int retry = 0; retry < 2; retry++) {
      ClaimGuard guard = reject.detector.guard(client());
      assertThat(Http.await(guard.check(command(merchant, "k2", request)))).as("still refused").isPresent();
      guard.keySettled(command(merchant, "k2", request), KeyFate.NEW);
    }
    assertThat(reject.pairs(merchant)).as("the retry refused, once").singleElement()
        .satisfies(pair -> assertThat(pair.getString("outcome")).isEqualTo("rejected"));
  }

  private static String keyHash(String merchant, String key) {
    return PaymentTwins.keyHash(merchant, new IdempotencyKey(key));
  }

  private static String anchor(String redisKey) {
    var value = Http.await(redis.send(Request.cmd(Command.GET).arg(redisKey)));
    return value == null ? null : value.toString();
  }
}
