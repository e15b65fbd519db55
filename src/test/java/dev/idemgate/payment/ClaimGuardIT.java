package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.CompletionSubscribers;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.Http;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.Tuple;
import java.net.URI;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * When a new payment's guard runs: a guard that may refuse runs before the claim, an observing
 * guard beside it. A PaymentService of its own on a running gateway (whose provider verticle
 * charges), with a guard the test holds open.
 */
class ClaimGuardIT {
  private static TestGateway gateway;
  private static OwnPaymentService own;
  private static PaymentService payments;
  private static Pool pool;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start();
    own = new OwnPaymentService(gateway, "claim-guard-test", 100, java.time.Clock.systemUTC());
    payments = own.payments;
    pool = own.pool;
  }

  @AfterAll
  static void stop() {
    own.close();
    gateway.close();
  }

  @Test
  @DisplayName("an observing guard runs beside the claim: the payment is claimed, charged and completed while "
      + "the observation is still open, and the answer waits for the observation")
  void observerRunsBesideTheClaim() {
    PaymentService.PayCommand cmd = OwnPaymentService.command(4_401);
    Promise<Void> observation = Promise.promise();
    Future<PayOutcome> outcome = own.onContext(() -> payments.pay(cmd, ClaimGuard.observing(c -> observation.future())));

    Waits.eventually(Duration.ofSeconds(10), () -> "COMPLETED".equals(state(cmd)), "the payment completed in PostgreSQL");
    Waits.eventually(Duration.ofSeconds(5), () -> String.valueOf(redisRecord(cmd)).startsWith("C|"),
        "its answer is in Redis, the last step before it is given");
    // Nothing shows an answer that is not given: one that did not wait would have been given by now.
    Waits.sleep(100);
    assertThat(outcome.isComplete()).as("the answer waits for the observation").isFalse();

    observation.fail("an observation that fails is ignored");
    PayOutcome done = Http.await(outcome);
    assertThat(done).isInstanceOf(PayOutcome.Fresh.class);
    assertThat(((PayOutcome.Fresh) done).response().status()).isEqualTo(201);
  }

  @Test
  @DisplayName("a guard that may refuse runs before the claim: while it is open nothing is claimed, and a "
      + "refused payment is never claimed or charged")
  void refusingGuardRunsBeforeTheClaim() {
    PaymentService.PayCommand cmd = OwnPaymentService.command(4_402);
    Promise<Optional<Object>> decision = Promise.promise();
    AtomicBoolean asked = new AtomicBoolean();
    Future<PayOutcome> outcome = own.onContext(() -> payments.pay(cmd, c -> {
      asked.set(true);
      return decision.future();
    }));

    Waits.eventually(Duration.ofSeconds(5), asked::get, "the guard is asked");
    // Nothing shows a claim that is not made: a claim sent beside the guard would be written by now.
    Waits.sleep(500);
    assertThat(state(cmd)).as("no claim while the guard decides").isNull();
    decision.complete(Optional.of("refused by the test"));
    PayOutcome done = Http.await(outcome);
    assertThat(done).isEqualTo(new PayOutcome.Refused("refused by the test"));
    assertThat(state(cmd)).isNull();
  }

  @Test
  @DisplayName("a payment that fails inside the gateway before its claim (500) leaves no claim in Redis: a retry "
      + "with its key is charged at once, not refused 409 in_flight until the lease ends")
  void internalErrorLeavesNoRedisClaim() {
    PaymentService.PayCommand cmd = OwnPaymentService.command(4_403);
    // A guard must not fail; one that does stands for any failure the gateway did not expect.
    Future<PayOutcome> failed = own.onContext(() -> payments.pay(cmd, 0, c -> Future.failedFuture(
        new IllegalStateException("an unexpected failure"))));
    Throwable failure = Http.await(failed.transform(done -> Future.succeededFuture(done.cause())));
    assertThat(failure).as("the payment failed (500)").hasMessage("an unexpected failure");
    assertThat(state(cmd)).as("nothing claimed in PostgreSQL").isNull();
    assertThat(redisRecord(cmd)).as("the failed request's claim in Redis").isNull();

    PayOutcome retried = Http.await(own.onContext(() -> payments.pay(cmd, ClaimGuard.NONE)));
    assertThat(retried).as("the retry").isInstanceOf(PayOutcome.Fresh.class);
    assertThat(((PayOutcome.Fresh) retried).response().status()).isEqualTo(201);
  }
  @Test
  @DisplayName("a request waiting for its twin (Prefer: wait=10) is woken when the twin fails inside the gateway "
      + "before its claim (500), finds the key free and is charged at once, not answered 409 or at the end of its wait")
  void internalErrorWakesAWaiterThatThenPays() {
    PaymentService.PayCommand cmd = OwnPaymentService.command(4_404);
    Promise<Optional<Object>> check = Promise.promise();
    // As the API calls it: no Prefer: wait of its own.
    Future<PayOutcome> twin = own.onContext(() -> payments.pay(cmd, 0, c -> check.future()));
    Waits.eventually(Duration.ofSeconds(5), () -> redisRecord(cmd) != null, "the twin holds the key in Redis");
    long sent = System.nanoTime();
    Future<PayOutcome> waiter = own.onContext(() -> payments.pay(cmd, 10, ClaimGuard.NONE));
    Waits.eventually(Duration.ofSeconds(5), () -> CompletionSubscribers.of(redisPort(), cmd.merchantId(), cmd.key().value()) > 0,
        "the waiter found the twin in flight and subscribed to its completion");
    assertThat(waiter.isComplete()).as("the waiter waits").isFalse();

    check.fail(new IllegalStateException("an unexpected failure"));
    Throwable twinFailure = Http.await(twin.transform(done -> Future.succeededFuture(done.cause())));
    assertThat(twinFailure).as("the twin failed (500)").hasMessage("an unexpected failure");
    PayOutcome waited = Http.await(waiter);
    long tookMs = Duration.ofNanos(System.nanoTime() - sent).toMillis();

    assertThat(waited).isInstanceOf(PayOutcome.Waited.class);
    PayOutcome after = ((PayOutcome.Waited) waited).outcome();
    assertThat(after).as("what the waiter came to").isInstanceOf(PayOutcome.Fresh.class);
    assertThat(((PayOutcome.Fresh) after).response().status()).isEqualTo(201);
    assertThat(tookMs).as("ms until the waiter was answered").isLessThan(7_000);
    assertThat(state(cmd)).isEqualTo("COMPLETED");
  }

  private static String redisRecord(PaymentService.PayCommand cmd) {
    return RespCommand.call(redisPort(), "GET", RedisGate.redisKey(cmd.merchantId(), cmd.key()));
  }

  private static int redisPort() {
    return URI.create(TestGateway.redisUrl()).getPort();
  }


  /** The key's state in PostgreSQL, or null when it was never claimed. */
  private static String state(PaymentService.PayCommand cmd) {
    var rows = Http.await(pool.preparedQuery(
        "SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2")
        .execute(Tuple.of(cmd.merchantId(), cmd.key().value())));
    Row row = rows.iterator().hasNext() ? rows.iterator().next() : null;
    return row == null ? null : row.getString("state");
  }

}
