package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.idempotency.ReplayCache;
import dev.idemgate.observability.GatewayMetrics;
import dev.idemgate.observability.Tracing;
import dev.idemgate.provider.ProviderClient;
import dev.idemgate.storage.PipelinedRedis;
import dev.idemgate.storage.Postgres;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.opentelemetry.api.OpenTelemetry;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.redis.client.Redis;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Supplier;
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
  private static Vertx vertx;
  private static Context context;
  private static Pool pool;
  private static Redis redis;
  private static PipelinedRedis pipeline;
  private static PaymentService payments;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start();
    vertx = gateway.gateway().vertx();
    context = vertx.getOrCreateContext();
    GatewayConfig config = gateway.config();
    pool = Postgres.requestPool(vertx, config, 2, "claim-guard-test");
    redis = Redis.createClient(vertx, TestGateway.redisUrl());
    pipeline = new PipelinedRedis(redis, context);
    RedisGate gate = new RedisGate(pipeline, config.redisTimeout(), config.lease(), RedisGate.breaker(vertx));
    IdempotencyStore store = new IdempotencyStore(pool, context, 1, config.storeTimeout(), config.lease(),
        config.providerId());
    payments = new PaymentService(vertx, gate, store, new ProviderClient(vertx.eventBus(), config), null,
        new GatewayMetrics(new SimpleMeterRegistry(), new Tracing(OpenTelemetry.noop())), config, new ReplayCache(100));
  }

  @AfterAll
  static void stop() {
    Http.await(onContext(pipeline::close));
    Http.await(redis.close());
    Http.await(pool.close());
    gateway.close();
  }

  @Test
  @DisplayName("an observing guard runs beside the claim: the payment is claimed, charged and completed while "
      + "the observation is still open, and the answer waits for the observation")
  void observerRunsBesideTheClaim() {
    PaymentService.PayCommand cmd = command(4_401);
    Promise<Void> observation = Promise.promise();
    Future<PayOutcome> outcome = onContext(() -> payments.pay(cmd, ClaimGuard.observing(c -> observation.future())));

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
    PaymentService.PayCommand cmd = command(4_402);
    Promise<Optional<Object>> decision = Promise.promise();
    Future<PayOutcome> outcome = onContext(() -> payments.pay(cmd, c -> decision.future()));

    Waits.sleep(500);
    assertThat(state(cmd)).as("no claim while the guard decides").isNull();
    decision.complete(Optional.of("refused by the test"));
    PayOutcome done = Http.await(outcome);
    assertThat(done).isEqualTo(new PayOutcome.Refused("refused by the test"));
    assertThat(state(cmd)).isNull();
  }

  private static PaymentService.PayCommand command(long amount) {
    ParsedPayment.Valid valid = (ParsedPayment.Valid) PaymentRequestParser.parse(
        Buffer.buffer(Http.payment(amount, "tok_visa").encode()));
    return new PaymentService.PayCommand(TestGateway.MERCHANT_A, new IdempotencyKey(Http.newKey()), valid.request(),
        valid.body(), null);
  }

  /** The key's state in PostgreSQL, or null when it was never claimed. */
  private static String state(PaymentService.PayCommand cmd) {
    var rows = Http.await(pool.preparedQuery(
        "SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2")
        .execute(Tuple.of(cmd.merchantId(), cmd.key().value())));
    Row row = rows.iterator().hasNext() ? rows.iterator().next() : null;
    return row == null ? null : row.getString("state");
  }

  /** Runs on the context the store and the pipeline belong to. */
  private static <T> Future<T> onContext(Supplier<Future<T>> action) {
    Promise<T> result = Promise.promise();
    context.runOnContext(v -> action.get().onComplete(result));
    return result.future();
  }
}
