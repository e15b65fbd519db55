package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.util.Optional;
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
    Future<PayOutcome> outcome = own.onContext(() -> payments.pay(cmd, c -> decision.future()));

    Waits.sleep(500);
    assertThat(state(cmd)).as("no claim while the guard decides").isNull();
    decision.complete(Optional.of("refused by the test"));
    PayOutcome done = Http.await(outcome);
    assertThat(done).isEqualTo(new PayOutcome.Refused("refused by the test"));
    assertThat(state(cmd)).isNull();
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
