package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.Completion;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.idempotency.ReplayCache;
import dev.idemgate.idempotency.StoreClaim;
import dev.idemgate.idempotency.StoredResponse;
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
import io.vertx.redis.client.Redis;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.Tuple;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A rolling upgrade to V10: pods of the previous version (732e446) run beside this one on the
 * migrated schema. Such a pod answers a retry that Redis does not answer (a restart, a failover,
 * another payload's claim in the way) from PostgreSQL with its own READ, which gives
 * {@code expires_at} as the key's expiry, and stores that moment in Redis, from which every pod
 * replays it for the key's life; and its recovery settles records with its own COMPLETE. Both must
 * tell the moment the first answer told. (Session 27's first V10 moved PostgreSQL's own count into
 * {@code expires_at} and the told moment into a column old pods do not know: both tests failed.)
 * The gateway here runs 3 s slow against PostgreSQL (a node whose NTP is off).
 */
class RollingUpgradeReplayExpiryIT {
  private static final Duration SLOW = Duration.ofSeconds(3);

  /** The previous version's READ, verbatim (IdempotencyStore at 732e446). */
  private static final String PREVIOUS_VERSION_READ = """
      SELECT k.merchant_id, k.idempotency_key, k.fingerprint, k.state, k.response_status, k.response_body,
             k.payment_id, k.expires_at, k.lease_expires_at
      FROM idemgate.idempotency_keys k
      JOIN unnest($1::text[], $2::text[]) AS i(merchant_id, idempotency_key)
        ON k.merchant_id = i.merchant_id AND k.idempotency_key = i.idempotency_key""";

  /** The previous version's COMPLETE, verbatim (IdempotencyStore at 732e446), as its recovery sends it. */
  private static final String PREVIOUS_VERSION_COMPLETE = """
      WITH i AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[],
                             $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[])
          AS t(merchant_id, idempotency_key, epoch, payment_id, state, response_status, response_body, expires_at,
               payment_status, provider, provider_reference, decline_code, next_inquiry_at)),
      done AS (
        UPDATE idemgate.idempotency_keys k
        SET state = i.state, response_status = i.response_status, response_body = i.response_body,
            expires_at = i.expires_at, next_inquiry_at = i.next_inquiry_at, updated_at = now()
        FROM i
        WHERE k.merchant_id = i.merchant_id AND k.idempotency_key = i.idempotency_key
          AND (i.epoch IS NULL OR k.epoch = i.epoch)
          AND k.payment_id = i.payment_id AND k.state IN ('PROCESSING', 'PENDING')
        RETURNING k.payment_id, k.merchant_id, k.provider_key, k.amount, k.currency, k.merchant_reference,
                  k.description, k.metadata, k.created_at, i.payment_status, i.provider, i.provider_reference,
                  i.decline_code)
      INSERT INTO idemgate.payments AS p
        (id, merchant_id, provider_key, amount, currency, status, merchant_reference, description, metadata,
         provider, provider_reference, decline_code, created_at)
      SELECT payment_id, merchant_id, provider_key, amount, currency, payment_status, merchant_reference, description,
             metadata, provider, provider_reference, decline_code, created_at
      FROM done
      ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, provider_reference = EXCLUDED.provider_reference,
        decline_code = EXCLUDED.decline_code, updated_at = now()
      RETURNING p.id""";

  private static TestGateway gateway;
  private static IdempotencyStore store;
  private static Duration keyTtl;
  private static Vertx vertx;
  private static Context context;
  private static Pool pool;
  private static Redis redis;
  private static PipelinedRedis pipeline;
  private static PaymentService payments;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(Map.of());
    vertx = gateway.gateway().vertx();
    context = vertx.getOrCreateContext();
    GatewayConfig config = gateway.config();
    pool = Postgres.requestPool(vertx, config, 2, "rolling-upgrade-expiry-test");
    redis = Redis.createClient(vertx, TestGateway.redisUrl());
    pipeline = new PipelinedRedis(redis, context);
    RedisGate gate = new RedisGate(pipeline, config.redisTimeout(), config.lease(), RedisGate.breaker(vertx));
    keyTtl = config.keyTtlFor(TestGateway.MERCHANT_A);
    store = new IdempotencyStore(pool, context, 1, config.storeTimeout(), config.lease(),
        config.providerId());
    payments = new PaymentService(vertx, gate, store, new ProviderClient(vertx.eventBus(), config), null,
        new GatewayMetrics(new SimpleMeterRegistry(), new Tracing(OpenTelemetry.noop())), config, new ReplayCache(0),
        Clock.offset(Clock.systemUTC(), SLOW.negated()));
  }

  @AfterAll
  static void stop() {
    Http.await(onContext(pipeline::close));
    Http.await(redis.close());
    Http.await(pool.close());
    gateway.close();
  }

  @Test
  @DisplayName("during a rolling upgrade, a pod of the previous version replays a payment completed by this version "
      + "with the Idempotency-Key-Expires its first answer told")
  void previousVersionReplaysTheToldExpiry() {
    PaymentService.PayCommand cmd = command(7_411);
    PayOutcome first = Http.await(onContext(() -> payments.pay(cmd)));
    assertThat(first).isInstanceOf(PayOutcome.Fresh.class);
    StoredResponse answer = ((PayOutcome.Fresh) first).response();
    assertThat(answer.status()).isEqualTo(201);

    Row previousRead = Http.await(pool.preparedQuery(PREVIOUS_VERSION_READ).execute(Tuple.tuple()
        .addArrayOfString(new String[] {cmd.merchantId()}).addArrayOfString(new String[] {cmd.key().value()})))
        .iterator().next();
    Instant previousVersionTells = previousRead.getOffsetDateTime("expires_at").toInstant();
    // Idempotency-Key-Expires is an HTTP date: whole seconds.
    assertThat(previousVersionTells.truncatedTo(ChronoUnit.SECONDS))
        .as("Idempotency-Key-Expires of a previous-version pod's replay, against the first answer's")
        .isEqualTo(answer.expiresAt().truncatedTo(ChronoUnit.SECONDS));
  }

  @Test
  @DisplayName("during a rolling upgrade, a payment left pending by this version and settled by a previous-version "
      + "pod's recovery is replayed by this version with the expiry of its settled answer, as the previous version "
      + "replays it")
  void settledByPreviousVersionReplaysItsExpiry() throws InterruptedException {
    String merchant = TestGateway.MERCHANT_A;
    IdempotencyKey key = new IdempotencyKey(Http.newKey());
    String paymentId = PaymentJson.newPaymentId(Instant.now());
    ClaimRequest claim = new ClaimRequest(merchant, key, "fp-rolling", paymentId, 7_412, "EUR", "ref-rolling", null, null);
    StoreClaim.Claimed owned = (StoreClaim.Claimed) Http.await(onContext(() -> store.claim(claim)));
    // This version's request path: the provider's outcome unknown, the payment pending (202).
    StoredResponse pending = new StoredResponse(202, "{\"status\":\"pending\"}", paymentId,
        Instant.now().plus(keyTtl).truncatedTo(ChronoUnit.MILLIS));
    Completion.Result written = Http.await(onContext(() -> store.complete(merchant, key, owned.epoch(),
        Completion.pending(pending, keyTtl, "simulator", Duration.ofSeconds(5)))));
    assertThat(written).isEqualTo(Completion.Result.RECORDED);

    Thread.sleep(1_500); // pending for a while (recovery's first inquiry comes later still)

    // A previous-version pod's recovery settles it: 201, its expiry on that pod's clock.
    Instant previousVersionExpiry = Instant.now().plus(keyTtl).truncatedTo(ChronoUnit.MILLIS);
    Http.await(pool.preparedQuery(PREVIOUS_VERSION_COMPLETE).execute(Tuple.tuple()
        .addArrayOfString(new String[] {merchant}).addArrayOfString(new String[] {key.value()})
        .addArrayOfInteger(new Integer[] {owned.epoch()}).addArrayOfString(new String[] {paymentId})
        .addArrayOfString(new String[] {"COMPLETED"}).addArrayOfInteger(new Integer[] {201})
        .addArrayOfString(new String[] {"{\"status\":\"succeeded\"}"})
        .addArrayOfOffsetDateTime(new OffsetDateTime[] {previousVersionExpiry.atOffset(ZoneOffset.UTC)})
        .addArrayOfString(new String[] {"succeeded"}).addArrayOfString(new String[] {"simulator"})
        .addArrayOfString(new String[] {"ch_rolling"}).addArrayOfString(new String[] {null})
        .addArrayOfOffsetDateTime(new OffsetDateTime[] {null})));

    // A retry answered by this version from PostgreSQL (Redis lost the key).
    StoreClaim retry = Http.await(onContext(() -> store.claim(new ClaimRequest(merchant, key, "fp-rolling",
        PaymentJson.newPaymentId(Instant.now()), 7_412, "EUR", "ref-rolling", null, null))));
    assertThat(retry).isInstanceOf(StoreClaim.Completed.class);
    StoredResponse replayed = ((StoreClaim.Completed) retry).response();
    assertThat(replayed.status()).isEqualTo(201);
    assertThat(replayed.expiresAt().truncatedTo(ChronoUnit.SECONDS))
        .as("Idempotency-Key-Expires of this version's replay, against the previous version's for the same answer")
        .isEqualTo(previousVersionExpiry.truncatedTo(ChronoUnit.SECONDS));
  }

  private static PaymentService.PayCommand command(long amount) {
    ParsedPayment.Valid valid = (ParsedPayment.Valid) PaymentRequestParser.parse(
        Buffer.buffer(Http.payment(amount, "tok_visa").encode()));
    return new PaymentService.PayCommand(TestGateway.MERCHANT_A, new IdempotencyKey(Http.newKey()), valid.request(),
        valid.body(), null);
  }

  /** Runs on the context the store and the pipeline belong to. */
  private static <T> Future<T> onContext(Supplier<Future<T>> action) {
    Promise<T> result = Promise.promise();
    context.runOnContext(v -> action.get().onComplete(result));
    return result.future();
  }
}
