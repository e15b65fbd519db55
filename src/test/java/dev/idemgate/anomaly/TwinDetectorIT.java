package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.StoredResponse;
import dev.idemgate.payment.PayOutcome;
import dev.idemgate.payment.PaymentRequest;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisOptions;
import java.time.Instant;
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

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
    redis = Redis.createClient(vertx, new RedisOptions().setConnectionString(TestGateway.redisUrl()));
  }

  @AfterAll
  static void stop() {
    Http.await(redis.close());
    Http.await(vertx.close());
  }

  private static TwinDetector detector(String policy, String window) {
    GatewayConfig config = TestGateway.config(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", policy,
        "IDEMGATE_DUPLICATE_WINDOW", window));
    return new AnomalyMonitor(config, new SimpleMeterRegistry(), TwinRateJudge.Settings.defaults()).detector(redis);
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
    TwinVerdict first = observe(detector, merchant, "k1", request);
    detector.settle(first, new PayOutcome.Fresh(new StoredResponse(201, "{}", "pay_original", Instant.now())));
    Http.await(vertx.timer(50));
    TwinVerdict twin = observe(detector, merchant, "k2", request);
    assertThat(twin).isInstanceOf(TwinVerdict.Allowed.class);
    TwinVerdict.Twin pair = ((TwinVerdict.Allowed) twin).twin();
    assertThat(pair.originalPaymentId()).isEqualTo("pay_original");
    assertThat(pair.originalKeyHash()).isEqualTo(PaymentTwins.keyHash(merchant, new IdempotencyKey("k1")));
    assertThat(observe(detector, merchant, "k2", request)).isInstanceOf(TwinVerdict.SameKey.class);
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
    assertThat(observe(detector, merchant, "k2", request, intended)).isInstanceOf(TwinVerdict.SameKey.class);
    assertThat(observe(detector, merchant, "k3", request, intended)).isInstanceOf(TwinVerdict.Allowed.class);
  }

  @Test
  @DisplayName("an original that charged nothing lets its record go: repeating it is no twin")
  void unchargedOriginalIsForgotten() {
    TwinDetector detector = detector("reject", "10m");
    String merchant = merchant();
    PaymentRequest request = payment("tok_decline");
    TwinVerdict first = observe(detector, merchant, "k1", request);
    detector.settle(first, new PayOutcome.Fresh(new StoredResponse(402, "{}", "pay_declined", Instant.now())));
    Http.await(vertx.timer(50));
    assertThat(observe(detector, merchant, "k2", request)).isInstanceOf(TwinVerdict.First.class);
  }

  @Test
  @DisplayName("after the duplicate window the same payment is new again")
  void windowExpires() {
    TwinDetector detector = detector("reject", "1s");
    String merchant = merchant();
    PaymentRequest request = payment("tok_visa");
    observe(detector, merchant, "k1", request);
    assertThat(observe(detector, merchant, "k2", request)).isInstanceOf(TwinVerdict.Reject.class);
    Http.await(vertx.timer(1_200));
    assertThat(observe(detector, merchant, "k3", request)).isInstanceOf(TwinVerdict.First.class);
  }

  @Test
  @DisplayName("Redis unreachable: no verdict, quickly, and never a failure")
  void redisDownGivesNoVerdict() {
    Redis dead = Redis.createClient(vertx, new RedisOptions()
        .setConnectionString("redis://127.0.0.1:" + TestGateway.freePort()));
    try {
      GatewayConfig config = TestGateway.config(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "reject"));
      TwinDetector detector = new AnomalyMonitor(config, new SimpleMeterRegistry(), TwinRateJudge.Settings.defaults())
          .detector(dead);
      long started = System.nanoTime();
      assertThat(observe(detector, merchant(), "k1", payment("tok_visa"))).isInstanceOf(TwinVerdict.Unobserved.class);
      assertThat((System.nanoTime() - started) / 1_000_000).isLessThan(TwinDetector.MAX_CHECK_MS + 500);
    } finally {
      Http.await(dead.close());
    }
  }

  @Test
  @DisplayName("policy off spends nothing: no Redis call, no verdict")
  void offIsFree() {
    TwinDetector detector = detector("off", "10m");
    assertThat(observe(detector, merchant(), "k1", payment("tok_visa"))).isInstanceOf(TwinVerdict.Unobserved.class);
  }
}
