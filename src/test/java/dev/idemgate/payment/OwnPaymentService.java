package dev.idemgate.payment;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.CompletionNotifier;
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
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.opentelemetry.api.OpenTelemetry;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import io.vertx.redis.client.Redis;
import io.vertx.sqlclient.Pool;
import java.time.Clock;
import java.util.function.Supplier;

/**
 * A PaymentService of a test's own, on a running gateway's Vert.x (whose provider verticle charges),
 * with its own pool, Redis client and pipeline on one context: for tests that call the service
 * directly, with a guard or a clock of their choosing.
 */
final class OwnPaymentService implements AutoCloseable {
  final PaymentService payments;
  /** On the shared database, with the request pool's settings. */
  final Pool pool;
  final Redis redis;
  private final Context context;
  private final PipelinedRedis pipeline;
  private final Redis subscriber;
  private final CompletionNotifier notifier;

  OwnPaymentService(TestGateway gateway, String poolName, int replayCacheEntries, Clock clock) {
    Vertx vertx = gateway.gateway().vertx();
    GatewayConfig config = gateway.config();
    context = vertx.getOrCreateContext();
    pool = Postgres.requestPool(vertx, config, 2, poolName);
    redis = Redis.createClient(vertx, TestGateway.redisUrl());
    pipeline = new PipelinedRedis(redis, context);
    RedisGate gate = new RedisGate(pipeline, config.redisTimeout(), config.lease(), RedisGate.breaker(vertx));
    IdempotencyStore store = new IdempotencyStore(pool, context, 1, config.storeTimeout(), config.lease(),
        config.providerId());
    // Its own subscriber connection: a Prefer: wait request of this service waits on it.
    subscriber = Redis.createClient(vertx, TestGateway.redisUrl());
    notifier = new CompletionNotifier(vertx, context, subscriber, config.redisTimeout().toMillis(), 0);
    payments = new PaymentService(vertx, gate, store, new ProviderClient(vertx.eventBus(), config), notifier,
        new GatewayMetrics(new SimpleMeterRegistry(), new Tracing(OpenTelemetry.noop())), config,
        new ReplayCache(replayCacheEntries), clock);
  }

  /** A new key's payment of {@code amount} by merchant A, as the API would hand it over. */
  static PaymentService.PayCommand command(long amount) {
    return command(Http.newKey(), Http.payment(amount, "tok_visa"));
  }

  /** Merchant A's payment of {@code body} under {@code key}, as the API would hand over a POST /pay of that body. */
  static PaymentService.PayCommand command(String key, JsonObject body) {
    ParsedPayment.Valid valid = (ParsedPayment.Valid) PaymentRequestParser.parse(Buffer.buffer(body.encode()));
    return new PaymentService.PayCommand(TestGateway.MERCHANT_A, new IdempotencyKey(key), valid.request(),
        valid.body(), null);
  }

  /** Runs on the context the store and the pipeline belong to. */
  <T> Future<T> onContext(Supplier<Future<T>> action) {
    Promise<T> result = Promise.promise();
    context.runOnContext(v -> action.get().onComplete(result));
    return result.future();
  }

  @Override
  public void close() {
    Http.await(onContext(pipeline::close));
    Http.await(onContext(notifier::close));
    Http.await(subscriber.close());
    Http.await(redis.close());
    Http.await(pool.close());
  }
}
