package dev.idemgate.ratelimit;

import static dev.idemgate.support.TestGateway.KEY_B;
import static dev.idemgate.support.TestGateway.MERCHANT_B;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
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
    return TestGateway.start(Map.of(
        "IDEMGATE_API_KEYS", limited.keyPair() + "," + MERCHANT_B + "=" + KEY_B,
        "IDEMGATE_MERCHANT_RATE_LIMIT", limited.id() + "=" + limit));
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
      List<Reply> replies = burst(gateway, limited.apiKey(), keys);

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
      // 5 in one second; a burst over a second's boundary can add a fraction of one.
      assertThat(created).isBetween(5, 6);

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
          .isGreaterThanOrEqualTo(14);
    }
  }

  @Test
  @DisplayName("reading a payment counts against the same limit as paying")
  void readsCountToo() {
    Merchant limited = Merchant.fresh();
    try (TestGateway gateway = gateway(limited, 1)) {
      Reply paid = http.pay(gateway.apiPort(), limited.apiKey(), Http.newKey(), Http.payment(700, "tok_visa"));
      assertThat(paid.status()).isEqualTo(201);
      String path = "/v1/payments/" + paid.json().getString("id");

      // One request per second: within the second after the payment, the read is refused.
      Reply refused = http.get(gateway.apiPort(), path, limited.apiKey());
      assertThat(refused.status()).isEqualTo(429);
      assertThat(refused.json().getString("code")).isEqualTo("rate_limited");

      Waits.sleep(2_100);
      assertThat(http.get(gateway.apiPort(), path, limited.apiKey()).status()).isEqualTo(200);
    }
  }

  @Test
  @DisplayName("two instances sharing Redis hold a merchant near one limit between them, not one limit each")
  void sharedBetweenInstances() {
    Merchant limited = Merchant.fresh();
    long limit = 40;
    try (TestGateway one = gateway(limited, limit); TestGateway two = gateway(limited, limit)) {
      AtomicInteger passedOne = new AtomicInteger();
      AtomicInteger passedTwo = new AtomicInteger();
      long start = System.nanoTime();
      long end = start + 3_000_000_000L;
      List<Future<Void>> loops = new ArrayList<>();
      for (int i = 0; i < 6; i++) {
        loops.add(hammer(one, limited, end, passedOne));
        loops.add(hammer(two, limited, end, passedTwo));
      }
      Http.await(Future.all(loops));
      double seconds = (System.nanoTime() - start) / 1e9;
      int passed = passedOne.get() + passedTwo.get();
      System.out.printf("rate limit %d/s shared by two instances: %d and %d let through in %.2f s%n",
          limit, passedOne.get(), passedTwo.get(), seconds);

      // Each instance alone would let through about 2 x limit x seconds between them.
      assertThat(passedOne.get()).isPositive();
      assertThat(passedTwo.get()).isPositive();
      assertThat(passed).isLessThanOrEqualTo((int) (limit * (seconds + 1) * 1.2));
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
