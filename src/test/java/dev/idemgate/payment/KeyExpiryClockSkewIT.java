package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.idempotency.StoredResponse;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Tuple;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A completed key's retention against a gateway whose clock runs behind PostgreSQL's. PostgreSQL's
 * clock cannot be moved, so the gateway's is: a PaymentService of its own on a running gateway
 * (whose provider verticle charges), on a clock five minutes slow, with a key TTL of one minute.
 * The retry goes to PostgreSQL, as after Redis lost the key (a restart, a failover). Before the key's
 * expiry was counted on PostgreSQL's clock, the retry was charged again as a new payment.
 */
class KeyExpiryClockSkewIT {
  /** How far this gateway's clock runs behind PostgreSQL's (and the real time: they share a machine). */
  private static final Duration SLOW = Duration.ofMinutes(5);
  private static final Duration KEY_TTL = Duration.ofSeconds(60);

  private static TestGateway gateway;
  private static OwnPaymentService own;
  private static PaymentService payments;
  private static Pool pool;
  private static Clock slowClock;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(Map.of("IDEMGATE_KEY_TTL", KEY_TTL.toSeconds() + "s"));
    slowClock = Clock.offset(Clock.systemUTC(), SLOW.negated());
    own = new OwnPaymentService(gateway, "key-expiry-skew-test", 0, slowClock);
    payments = own.payments;
    pool = own.pool;
  }

  @AfterAll
  static void stop() {
    own.close();
    gateway.close();
  }

  @Test
  @DisplayName("with PostgreSQL's clock 5 min ahead of the gateway's, a retry within the advertised key expiry "
      + "replays the payment: PostgreSQL keeps the key at least until the moment the gateway advertised")
  void retryWithinTheAdvertisedWindowIsReplayed() {
    PaymentService.PayCommand cmd = OwnPaymentService.command(7_301);
    PayOutcome first = Http.await(own.onContext(() -> payments.pay(cmd)));
    assertThat(first).isInstanceOf(PayOutcome.Fresh.class);
    StoredResponse answer = ((PayOutcome.Fresh) first).response();
    assertThat(answer.status()).isEqualTo(201);

    // The advertised expiry is on the gateway's clock: the real moment it names is SLOW later.
    Instant advertisedReal = answer.expiresAt().plus(SLOW);
    assertThat(pgExpiry(cmd)).as("PostgreSQL's expiry of the key, against the real moment the gateway advertised")
        .isAfterOrEqualTo(advertisedReal);

    forgetInRedis(cmd);
    assertThat(slowClock.instant()).as("the retry comes within the advertised window").isBefore(answer.expiresAt());
    PayOutcome retry = Http.await(own.onContext(() -> payments.pay(cmd)));
    assertThat(retry).as("the retry within the advertised window").isInstanceOf(PayOutcome.Replayed.class);
    StoredResponse replayed = ((PayOutcome.Replayed) retry).response();
    assertThat(replayed.paymentId()).isEqualTo(answer.paymentId());
    assertThat(payments(cmd)).as("ledger rows of this payment's merchant reference").isEqualTo(1);
    // The replay read from PostgreSQL tells the moment the first answer told, not PostgreSQL's expiry.
    assertThat(replayed.expiresAt()).isEqualTo(answer.expiresAt());
  }


  /** Redis lost the key (a restart, a failover): the retry is decided by PostgreSQL. */
  private static void forgetInRedis(PaymentService.PayCommand cmd) {
    Http.await(own.redis.send(Request.cmd(Command.DEL).arg(RedisGate.redisKey(cmd.merchantId(), cmd.key()))));
  }

  private static Instant pgExpiry(PaymentService.PayCommand cmd) {
    return Http.await(pool.preparedQuery(
            "SELECT greatest(expires_at, frees_at) AS free FROM idemgate.idempotency_keys "
                + "WHERE merchant_id = $1 AND idempotency_key = $2")
        .execute(Tuple.of(cmd.merchantId(), cmd.key().value()))).iterator().next().getOffsetDateTime("free").toInstant();
  }

  private static long payments(PaymentService.PayCommand cmd) {
    return Http.await(pool.preparedQuery("SELECT count(*) FROM idemgate.payments WHERE merchant_id = $1 AND merchant_reference = $2")
        .execute(Tuple.of(cmd.merchantId(), cmd.request().merchantReference()))).iterator().next().getLong(0);
  }

}
