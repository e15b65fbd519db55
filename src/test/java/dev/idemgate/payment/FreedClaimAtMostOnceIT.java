package dev.idemgate.payment;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.CompletionSubscribers;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.ScratchDatabase;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A payment that fails inside the gateway (500) frees its own Redis claim, whenever it fails: also
 * after its PostgreSQL claim committed and its charge went out, and after its completion committed.
 * Redis then no longer speaks for the key, and its retries are decided by PostgreSQL alone. These
 * tests hold that to the promise that matters: such a retry is never charged again. It is refused
 * (409) while PostgreSQL holds the key in flight, and replays the one charge once the record is
 * settled, on the instance that failed and on another one.
 *
 * <p>The failures are injected into a PaymentService of the test's own ({@link OwnPaymentService})
 * on the payer instance, whose provider verticle charges: a clock that throws once, when the answer's
 * expiry is read after the provider answered (before the completion is sent), and an observing guard
 * that fails once the payment completed. Everything runs in a database of the tests' own, so that
 * only the payer's recovery settles the records: each in-process simulator is a provider of its own,
 * and another gateway's recovery would ask one that never saw the charge. The other instance
 * recovers nothing for that reason.
 */
class FreedClaimAtMostOnceIT {
  private static final int WAIT_SECONDS = 10;
  /** A tok_slow charge takes this long at the simulator: the window in which its twins start waiting. */
  private static final long SLOW_CHARGE_MS = 1_500;
  /** Well under the wait: a twin that sat its wait out answers after WAIT_SECONDS and more. */
  private static final long WOKEN_WITHIN_MS = 6_000;
  private static final String FAILURE = "an unexpected failure after the charge";

  private static Http http;
  private static ScratchDatabase scratch;
  private static TestDb db;
  /** Its own service fails; its API, its simulator (which charges) and its recovery serve the retries. */
  private static TestGateway payer;
  /** Another instance on the same PostgreSQL and Redis; its recovery stays out of the way (see the class comment). */
  private static TestGateway other;
  private static OwnPaymentService own;
  private static FailingClock clock;

  @BeforeAll
  static void start() {
    http = new Http();
    scratch = ScratchDatabase.create(http.vertx(), "idemgate_freed_claim");
    db = new TestDb(http.vertx(), scratch.url());
    // Recovery takes a record over lease + provider timeout + 1 s after its claim: about 6 s here.
    payer = TestGateway.start(Map.of(
        "IDEMGATE_PG_URL", scratch.url(),
        "IDEMGATE_LEASE", "3s",
        "IDEMGATE_PROVIDER_TIMEOUT", "2s",
        "IDEMGATE_SIMULATOR_SLOW_MS", String.valueOf(SLOW_CHARGE_MS),
        "IDEMGATE_RECOVERY_INTERVAL", "200ms",
        "IDEMGATE_RECOVERY_BACKOFF", "5s,300ms,600ms"));
    other = TestGateway.start(Map.of(
        "IDEMGATE_PG_URL", scratch.url(),
        "IDEMGATE_LEASE", "3s",
        "IDEMGATE_PROVIDER_TIMEOUT", "2s",
        "IDEMGATE_RECOVERY_INTERVAL", "1h"));
    clock = new FailingClock();
    own = new OwnPaymentService(payer, "freed-claim-test", 100, clock);
  }

  @AfterAll
  static void stop() {
    own.close();
    other.close();
    payer.close();
    db.close();
    scratch.close();
    http.close();
  }

  @Test
  @DisplayName("freed Redis claim of a 500 after the charge: a payment that fails inside the gateway after the "
      + "provider charged it, before its completion is recorded, leaves no claim in Redis; its retries on the same "
      + "and on another instance are refused 409 while PostgreSQL holds it in flight, then replay the charge recovery "
      + "found: one charge at the provider, one ledger row")
  void internalErrorAfterTheChargeIsNeverChargedAgain() {
    String key = Http.newKey();
    JsonObject body = Http.payment(4_601, "tok_visa");
    PaymentService.PayCommand cmd = OwnPaymentService.command(key, body);

    clock.failSecondRead(); // the first names the payment at its claim; the second, after the charge, fails
    Throwable failure = failureOf(own.onContext(() -> own.payments.pay(cmd, 0, ClaimGuard.NONE)));
    assertThat(failure).as("the payment failed (500)").hasMessage(FAILURE);
    assertThat(state(key)).as("the key in PostgreSQL").isEqualTo("PROCESSING");
    assertThat(redisRecord(key)).as("the failed request's claim in Redis").isNull();
    assertChargedOnce(key, body, "after the failure");

    PayOutcome sameService = Http.await(own.onContext(() -> own.payments.pay(cmd, ClaimGuard.NONE)));
    assertThat(sameService).as("the retry on the service that failed").isInstanceOf(PayOutcome.InFlight.class);
    assertRefusedInFlight(http.pay(payer.apiPort(), KEY_A, key, body), "the retry on the instance that failed");
    assertRefusedInFlight(http.pay(other.apiPort(), KEY_A, key, body), "the retry on another instance");
    assertChargedOnce(key, body, "after the retries in flight");

    String paymentId = awaitRecovered(key);
    assertReplayed(http.pay(payer.apiPort(), KEY_A, key, body), paymentId, "the retry on the instance that failed");
    assertReplayed(http.pay(other.apiPort(), KEY_A, key, body), paymentId, "the retry on another instance");
    PayOutcome settled = Http.await(own.onContext(() -> own.payments.pay(cmd, ClaimGuard.NONE)));
    assertThat(settled).as("the retry on the service that failed").isInstanceOf(PayOutcome.Replayed.class);
    assertThat(((PayOutcome.Replayed) settled).response().paymentId()).isEqualTo(paymentId);
    assertSettledOnce(key, body, "after the record was settled");
  }

  @Test
  @DisplayName("freed Redis claim of a 500 after the charge: twins waiting for the payment (Prefer: wait=10), on the "
      + "same and on another instance, are woken by its failure and answered 409 while PostgreSQL holds it in "
      + "flight, not charged")
  void twinsWaitingOnAnInternalErrorAfterTheChargeAreNotCharged() {
    String key = Http.newKey();
    JsonObject body = Http.payment(4_602, "tok_slow");
    PaymentService.PayCommand cmd = OwnPaymentService.command(key, body);

    clock.failSecondRead();
    Future<PayOutcome> failing = own.onContext(() -> own.payments.pay(cmd, 0, ClaimGuard.NONE));
    Waits.eventually(Duration.ofSeconds(5), () -> "PROCESSING".equals(state(key)),
        "the payment is claimed in PostgreSQL, its charge under way");
    long sent = System.nanoTime();
    Future<PayOutcome> sameService = own.onContext(() -> own.payments.pay(cmd, WAIT_SECONDS, ClaimGuard.NONE));
    Map<String, String> wait = Map.of("Prefer", "wait=" + WAIT_SECONDS);
    Future<Reply> samePayer = http.payAsync(payer.apiPort(), KEY_A, key, body.encode(), wait);
    Future<Reply> otherInstance = http.payAsync(other.apiPort(), KEY_A, key, body.encode(), wait);
    // Each found the key in flight and subscribed to its completion, on a connection of its own (this
    // service's, the payer's API verticle's, the other instance's).
    Waits.eventually(Duration.ofSeconds(5), () -> CompletionSubscribers.of(redisPort(), MERCHANT_A, key) >= 3,
        () -> "the three twins subscribed; subscribers: " + CompletionSubscribers.of(redisPort(), MERCHANT_A, key));
    assertThat(failing.isComplete()).as("the charge is still under way").isFalse();
    assertThat(sameService.isComplete() || samePayer.isComplete() || otherInstance.isComplete())
        .as("a twin answered before the payment ended").isFalse();

    assertThat(failureOf(failing)).as("the payment failed (500)").hasMessage(FAILURE);
    PayOutcome waited = Http.await(sameService);
    Reply payerWaited = Http.await(samePayer);
    Reply otherWaited = Http.await(otherInstance);
    long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sent);

    assertThat(waited).as("the twin on the service that failed").isInstanceOf(PayOutcome.Waited.class);
    assertThat(((PayOutcome.Waited) waited).outcome()).as("what it came to").isInstanceOf(PayOutcome.InFlight.class);
    assertRefusedInFlight(payerWaited, "the twin on the instance that failed");
    assertRefusedInFlight(otherWaited, "the twin on another instance");
    assertThat(tookMs).as("ms until the twins were answered (their wait: %d s)", WAIT_SECONDS)
        .isLessThan(WOKEN_WITHIN_MS);
    assertThat(state(key)).as("the key in PostgreSQL").isEqualTo("PROCESSING");
    assertChargedOnce(key, body, "after the twins were answered");

    String paymentId = awaitRecovered(key);
    assertReplayed(http.pay(other.apiPort(), KEY_A, key, body), paymentId, "a later retry on another instance");
    assertSettledOnce(key, body, "after the record was settled");
  }

  @Test
  @DisplayName("freed Redis claim of a 500 after the completion: a payment that fails inside the gateway after its "
      + "completion committed is replayed to its retries (201, the same payment) on the same and on another "
      + "instance, not charged again")
  void internalErrorAfterTheCompletionIsReplayed() {
    String key = Http.newKey();
    JsonObject body = Http.payment(4_603, "tok_visa");
    PaymentService.PayCommand cmd = OwnPaymentService.command(key, body);
    Promise<Object> observation = Promise.promise();
    // An observing guard whose check fails: one built with ClaimGuard.observing never does. It stands
    // for any failure the gateway did not expect once the payment is done; the answer waits for it.
    ClaimGuard failsLate = new ClaimGuard() {
      @Override
      public Future<Optional<Object>> check(PaymentService.PayCommand c) {
        return observation.future().map(v -> Optional.empty());
      }

      @Override
      public boolean mayRefuse() {
        return false;
      }
    };

    Future<PayOutcome> failing = own.onContext(() -> own.payments.pay(cmd, 0, failsLate));
    Waits.eventually(Duration.ofSeconds(10), () -> "COMPLETED".equals(state(key)),
        "the payment completed in PostgreSQL");
    Waits.eventually(Duration.ofSeconds(5), () -> {
      String held = redisRecord(key);
      return held != null && held.startsWith("C|");
    }, "its answer is in Redis");
    observation.fail(new IllegalStateException(FAILURE));
    assertThat(failureOf(failing)).as("the payment failed (500)").hasMessage(FAILURE);
    String paymentId = paymentId(key);

    PayOutcome sameService = Http.await(own.onContext(() -> own.payments.pay(cmd, ClaimGuard.NONE)));
    assertThat(sameService).as("the retry on the service that failed").isInstanceOf(PayOutcome.Replayed.class);
    assertThat(((PayOutcome.Replayed) sameService).response().status()).isEqualTo(201);
    assertThat(((PayOutcome.Replayed) sameService).response().paymentId()).isEqualTo(paymentId);
    assertReplayed(http.pay(payer.apiPort(), KEY_A, key, body), paymentId, "the retry on the instance that failed");
    assertReplayed(http.pay(other.apiPort(), KEY_A, key, body), paymentId, "the retry on another instance");
    // Redis forgetting the answer too (eviction, a restart): PostgreSQL replays it.
    RespCommand.call(redisPort(), "DEL", RedisGate.redisKey(MERCHANT_A, new IdempotencyKey(key)));
    assertReplayed(http.pay(other.apiPort(), KEY_A, key, body), paymentId, "a retry once Redis forgot the key");
    assertSettledOnce(key, body, "after the retries");
  }

  /** Waits for recovery to complete the record from the provider's charge; returns its payment id. */
  private static String awaitRecovered(String key) {
    Waits.eventually(Duration.ofSeconds(30), () -> "COMPLETED".equals(state(key)),
        "recovery completed the record from the provider's charge");
    return paymentId(key);
  }

  /** Charged once ({@link #assertChargedOnce}), and one ledger row for the payment. */
  private static void assertSettledOnce(String key, JsonObject body, String when) {
    assertChargedOnce(key, body, when);
    assertThat(ledgerRows(body)).as("ledger rows of the payment").isEqualTo(1);
  }

  private static void assertRefusedInFlight(Reply reply, String what) {
    assertThat(reply.status()).as("%s: %s", what, reply.body()).isIn(409, 202);
    assertThat(reply.header("Idempotent-Replayed")).as("%s replays nothing charged anew", what).isNotEqualTo("true");
  }

  private static void assertReplayed(Reply reply, String paymentId, String what) {
    assertThat(reply.status()).as("%s: %s", what, reply.body()).isEqualTo(201);
    assertThat(reply.header("Idempotent-Replayed")).as(what).isEqualTo("true");
    assertThat(reply.json().getString("id")).as(what).isEqualTo(paymentId);
  }

  /**
   * One charge request at the payer's simulator, none at the other instance's, under every provider
   * key the key had (its first, and the one its record holds now: a claim taken again goes out under
   * another), no payment of this body in the ledger but the key's own, and the key never released.
   */
  private static void assertChargedOnce(String key, JsonObject body, String when) {
    Set<String> providerKeys = new LinkedHashSet<>();
    providerKeys.add(ProviderKeys.of(MERCHANT_A, key));
    providerKeys.add((String) db.scalar("SELECT provider_key FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key));
    long requests = 0;
    int charges = 0;
    int otherCharges = 0;
    for (String providerKey : providerKeys) {
      JsonObject payerLog = chargeLog(payer, providerKey);
      requests += payerLog.getLong("requests", 0L);
      charges += payerLog.getJsonArray("charges").size();
      otherCharges += chargeLog(other, providerKey).getJsonArray("charges").size();
    }
    assertThat(requests).as("charge requests at the payer's provider %s", when).isEqualTo(1L);
    assertThat(charges).as("charges at the payer's provider %s", when).isEqualTo(1);
    assertThat(otherCharges).as("charges at the other instance's provider %s", when).isZero();
    assertThat(ledgerRows(body)).as("ledger rows of the payment %s", when).isLessThanOrEqualTo(1);
    assertThat(db.scalar("SELECT count(*) FROM idemgate.released_payments "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key))
        .as("releases of the key %s", when).isEqualTo(0L);
  }

  private static long ledgerRows(JsonObject body) {
    return (Long) db.scalar("SELECT count(*) FROM idemgate.payments WHERE merchant_id = $1 AND merchant_reference = $2",
        MERCHANT_A, body.getString("merchant_reference"));
  }

  private static JsonObject chargeLog(TestGateway gateway, String providerKey) {
    Reply reply = http.get(gateway.managementPort(), "/admin/simulator/charges?idempotency_key="
        + URLEncoder.encode(providerKey, StandardCharsets.UTF_8), TestGateway.ADMIN_TOKEN);
    assertThat(reply.status()).as("charge log: %s", reply.body()).isEqualTo(200);
    return reply.json();
  }

  private static Throwable failureOf(Future<?> future) {
    return Http.await(future.transform(done -> Future.succeededFuture(done.cause())));
  }

  private static String state(String key) {
    return (String) db.scalar("SELECT state FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
  }

  private static String paymentId(String key) {
    return (String) db.scalar("SELECT payment_id FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
  }

  private static String redisRecord(String key) {
    return RespCommand.call(redisPort(), "GET", RedisGate.redisKey(MERCHANT_A, new IdempotencyKey(key)));
  }

  private static int redisPort() {
    return URI.create(TestGateway.redisUrl()).getPort();
  }

  /**
   * The system clock, except that, once armed, its second read throws: the service reads it to name
   * a payment at its claim, then, after the provider answered, for the expiry its answer tells. A
   * clock does not fail; this one stands for any failure the gateway did not expect between the
   * charge and its completion.
   */
  private static final class FailingClock extends Clock {
    private final AtomicInteger readsToFailure = new AtomicInteger();

    void failSecondRead() {
      readsToFailure.set(2);
    }

    @Override
    public Instant instant() {
      if (readsToFailure.get() > 0 && readsToFailure.decrementAndGet() == 0) {
        throw new IllegalStateException(FAILURE);
      }
      return Instant.now();
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }
  }
}
