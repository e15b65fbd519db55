package dev.idemgate.ratelimit;

import static dev.idemgate.support.TestGateway.KEY_B;
import static dev.idemgate.support.TestGateway.MERCHANT_B;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedis;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * {@code rate_limit} and {@code merchant_rate_limit} on gateways sharing the real Redis. Each test
 * has merchants of its own, so that no count of another test or run is in their Redis keys.
 */
class RateLimitIT {
  private static Http http;

  @BeforeAll
  static void client() {
    http = new Http();
  }

  @AfterAll
  static void close() {
    http.close();
  }

  private record Merchant(String id, String apiKey) {
    static Merchant fresh() {
      String id = "rl_" + UUID.randomUUID().toString().substring(0, 8);
      return new Merchant(id, "sk_test_" + id);
    }

    String keyPair() {
      return id + "=" + apiKey;
    }
  }

  private static TestGateway gateway(Merchant limited, long limit) {
    return gateway(limited, limit, Map.of());
  }

  private static TestGateway gateway(Merchant limited, long limit, Map<String, String> settings) {
    Map<String, String> all = new HashMap<>(settings);
    all.put("IDEMGATE_API_KEYS", limited.keyPair() + "," + MERCHANT_B + "=" + KEY_B);
    all.put("IDEMGATE_MERCHANT_RATE_LIMIT", limited.id() + "=" + limit);
    return TestGateway.start(all);
  }

  private static List<Reply> reads(TestGateway gateway, Merchant merchant, int n) {
    List<Future<Reply>> reads = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      reads.add(http.vertx().executeBlocking(
          () -> http.get(gateway.apiPort(), "/v1/payments/pay_none", merchant.apiKey()), false));
    }
    return Http.await(Future.all(reads)).list();
  }

  private static List<Reply> burst(TestGateway gateway, String apiKey, List<String> keys) {
    List<Future<Reply>> sent = new ArrayList<>();
    for (String key : keys) {
      sent.add(http.payAsync(gateway.apiPort(), apiKey, key, Http.payment(1000, "tok_visa").encode(), Map.of()));
    }
    return Http.await(Future.all(sent)).list();
  }

  private static List<String> freshKeys(int n) {
    List<String> keys = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      keys.add(Http.newKey());
    }
    return keys;
  }

  @Test
  @DisplayName("past its limit a merchant gets 429 rate_limited with Retry-After and nothing claimed: the key's retry "
      + "after it is a new payment, charged once; a merchant without a limit is not refused")
  void pastTheLimit() {
    Merchant limited = Merchant.fresh();
    try (TestGateway gateway = gateway(limited, 5)) {
      List<String> keys = freshKeys(20);
      long start = System.nanoTime();
      List<Reply> replies = burst(gateway, limited.apiKey(), keys);
      double burstSeconds = (System.nanoTime() - start) / 1e9;

      List<String> refusedKeys = new ArrayList<>();
      int created = 0;
      for (int i = 0; i < replies.size(); i++) {
        Reply reply = replies.get(i);
        if (reply.status() == 201) {
          created++;
          continue;
        }
        assertThat(reply.status()).as(reply.body()).isEqualTo(429);
        assertThat(reply.header("Content-Type")).startsWith("application/problem+json");
        assertThat(reply.json().getString("code")).isEqualTo("rate_limited");
        assertThat(reply.header("Retry-After")).isEqualTo("1");
        assertThat(reply.header("Idempotency-Key")).isEqualTo(keys.get(i));
        refusedKeys.add(keys.get(i));
      }
      // 5 in one second; a burst across a second's boundary adds at most the limit times the part
      // of the next second it took (the sliding second), so 5 for a burst of up to 0.2 s.
      assertThat(created).isBetween(5, 5 + (int) (5 * burstSeconds));

      List<Reply> unlimited = burst(gateway, KEY_B, freshKeys(20));
      assertThat(unlimited).extracting(Reply::status).containsOnly(201);

      // The sliding second has forgotten the burst after two seconds.
      Waits.sleep(2_100);
      String refused = refusedKeys.get(0);
      Reply retry = http.pay(gateway.apiPort(), limited.apiKey(), refused, Http.payment(1000, "tok_visa"));
      assertThat(retry.status()).isEqualTo(201);
      assertThat(retry.header("Idempotent-Replayed")).isNull();
      assertThat(charges(gateway, limited.id(), refused)).isEqualTo(1);

      String scrape = http.get(gateway.managementPort(), "/metrics", null).body();
      assertThat(Scrape.value(scrape, "idemgate_requests_total{outcome=\"rate_limited\"}").orElse(0))
          .isEqualTo(refusedKeys.size());
    }
  }

  @Test
  @DisplayName("reads have a budget of their own: a merchant polling past its limit still gets its payments through")
  void readsHaveTheirOwnBudget() {
    Merchant limited = Merchant.fresh();
    try (TestGateway gateway = gateway(limited, 2)) {
      List<Reply> answers = reads(gateway, limited, 8);
      assertThat(answers).extracting(Reply::status).containsOnly(404, 429);
      Reply refused = answers.stream().filter(reply -> reply.status() == 429).findFirst().orElseThrow();
      assertThat(refused.json().getString("code")).isEqualTo("rate_limited");
      assertThat(refused.json().getString("detail")).startsWith("more than 2 reads per second");

      Reply paid = http.pay(gateway.apiPort(), limited.apiKey(), Http.newKey(), Http.payment(700, "tok_visa"));
      assertThat(paid.status()).isEqualTo(201);

      String scrape = http.get(gateway.managementPort(), "/metrics", null).body();
      assertThat(Scrape.value(scrape, "idemgate_rate_limited_total{route=\"get_payment\"}").orElse(0)).isPositive();
    }
  }

  @Test
  @DisplayName("with its Redis gone an instance still holds the limit on its own traffic, and counts the exchanges that failed")
  void withoutRedis() {
    Merchant limited = Merchant.fresh();
    try (ThrowawayRedis redis = ThrowawayRedis.start();
        TestGateway gateway = gateway(limited, 5, Map.of("IDEMGATE_REDIS_URL", redis.url(), "IDEMGATE_REDIS_TIMEOUT", "200ms"))) {
      redis.kill();

      long start = System.nanoTime();
      List<Reply> answers = reads(gateway, limited, 20);
      double burstSeconds = (System.nanoTime() - start) / 1e9;

      long answered = answers.stream().filter(reply -> reply.status() == 404).count();
      assertThat(answers).extracting(Reply::status).containsOnly(404, 429);
      assertThat(answered).isBetween(5L, 5L + (long) (5 * burstSeconds));
      Waits.eventually(Duration.ofSeconds(5), () -> Scrape.value(http.get(gateway.managementPort(), "/metrics", null).body(),
          "idemgate_rate_limit_exchange_failures_total").orElse(0) > 0, "a failed exchange is counted");
    }
  }

  @Test
  @DisplayName("three instances sharing Redis hold a merchant near one limit between them, not one limit each")
  void sharedBetweenInstances() {
    Merchant limited = Merchant.fresh();
    long limit = 40;
    try (TestGateway one = gateway(limited, limit); TestGateway two = gateway(limited, limit);
        TestGateway three = gateway(limited, limit)) {
      List<TestGateway> instances = List.of(one, two, three);
      List<AtomicInteger> passedBy = List.of(new AtomicInteger(), new AtomicInteger(), new AtomicInteger());
      long start = System.nanoTime();
      long end = start + 3_000_000_000L;
      List<Future<Void>> loops = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        for (int g = 0; g < instances.size(); g++) {
          loops.add(hammer(instances.get(g), limited, end, passedBy.get(g)));
        }
      }
      Http.await(Future.all(loops));
      double seconds = (System.nanoTime() - start) / 1e9;
      int passed = passedBy.stream().mapToInt(AtomicInteger::get).sum();
      System.out.printf("rate limit %d/s shared by three instances: %s let through in %.2f s%n", limit, passedBy, seconds);

      // One exact limiter lets through a full second at the start, then the limit each second; each
      // instance on its own would let through that much, three times it between them.
      assertThat(passedBy).allSatisfy(count -> assertThat(count.get()).isPositive());
      assertThat(passed).isLessThanOrEqualTo((int) (limit * (seconds + 1) * 1.5));
      assertThat(passed).isGreaterThanOrEqualTo((int) (limit * (seconds - 1)));
    }
  }

  /** Reads in a loop until {@code endNanos}, counting the answers that were not 429. */
  private static Future<Void> hammer(TestGateway gateway, Merchant merchant, long endNanos, AtomicInteger passed) {
    if (System.nanoTime() >= endNanos) {
      return Future.succeededFuture();
    }
    return http.vertx().executeBlocking(() -> http.get(gateway.apiPort(), "/v1/payments/pay_none", merchant.apiKey()), false)
        .compose(reply -> {
          if (reply.status() != 429) {
            assertThat(reply.status()).isEqualTo(404);
            passed.incrementAndGet();
          }
          return hammer(gateway, merchant, endNanos, passed);
        });
  }

  private static int charges(TestGateway gateway, String merchant, String key) {
    Reply reply = http.get(gateway.managementPort(), "/admin/simulator/charges?merchant=" + merchant + "&key="
        + URLEncoder.encode(key, StandardCharsets.UTF_8), TestGateway.ADMIN_TOKEN);
    assertThat(reply.status()).isEqualTo(200);
    return reply.json().getJsonArray("charges").size();
  }
}
