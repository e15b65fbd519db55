package dev.idemgate.faults;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.FaultProxy;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedis;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * PostgreSQL holds a payment's answer, and the write that puts it in Redis in place of the request's
 * claim never reaches Redis (the connection is reset: a Redis restart, a network cut). The claim
 * must not stay behind: it would answer the key 409 "in flight" until its lease ends (30 s by
 * default) for a payment that is done, on every instance (the one that answered replays a retry of
 * the same bytes from its own cache).
 */
class LostRedisAnswerIT {
  private static final int WAIT_SECONDS = 10;
  /** Every provider call takes this long: the window in which a twin waits for the first request. */
  private static final long PROVIDER_LATENCY_MS = 1_000;
  /** Well under the wait: a waiter that sat its wait out answers after WAIT_SECONDS and more. */
  private static final long ANSWERED_WITHIN_MS = 6_000;

  @Test
  @DisplayName("a completed payment whose answer never reached Redis (connection reset) leaves no claim there: its "
      + "retry is replayed at once, not 409 idempotency_key_in_use, and a twin waiting on it (Prefer: wait) is woken "
      + "with the answer")
  void lostCompletionWriteLeavesNoClaim() {
    try (ThrowawayRedis redis = ThrowawayRedis.start();
        FaultProxy proxy = FaultProxy.start("127.0.0.1", redis.port());
        Http http = new Http();
        TestGateway gateway = InfraFaultFixture.gatewayThrough(proxy, "IDEMGATE_API_INSTANCES", "1",
            "IDEMGATE_SIMULATOR_LATENCY_MS", String.valueOf(PROVIDER_LATENCY_MS));
        // Another instance: the first one answers a retry of the same bytes from its replay cache.
        TestGateway other = TestGateway.start(Map.of("IDEMGATE_REDIS_URL", redis.url(), "IDEMGATE_API_INSTANCES", "1"))) {
      String key = Http.newKey();
      String redisKey = RedisGate.redisKey(MERCHANT_A, new IdempotencyKey(key));
      String body = Http.payment(950, "tok_visa").encode();

      // The completed answer's SET (its value starts "C|") is lost with its connection.
      proxy.resetBefore("\r\nC|");
      Future<Reply> first = http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of());
      Waits.eventually(Duration.ofSeconds(5), () -> {
        String held = RespCommand.call(redis.port(), "GET", redisKey);
        return held != null && held.startsWith("P|");
      }, "the first request holds the key in Redis");
      long sent = System.nanoTime();
      Future<Reply> waiter = http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of("Prefer", "wait=" + WAIT_SECONDS));

      Reply paid = Http.await(first);
      assertThat(paid.status()).as(paid.body()).isEqualTo(201);
      // The waiter first: woken by the deleted claim, it takes a claim of its own in Redis for a moment
      // to ask PostgreSQL, and a retry in that moment is rightly refused 409 as a twin in flight.
      Reply waited = Http.await(waiter);
      long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sent);
      assertThat(waited.status()).as(waited.body()).isEqualTo(201);
      assertThat(waited.json().getString("id")).isEqualTo(paid.json().getString("id"));
      assertThat(tookMs).as("ms until the waiter was answered (its wait: %d s)", WAIT_SECONDS)
          .isLessThan(ANSWERED_WITHIN_MS);

      String left = RespCommand.call(redis.port(), "GET", redisKey);
      Reply retry = http.pay(other.apiPort(), KEY_A, key, new JsonObject(body));
      assertThat(retry.status())
          .as("the retry of a payment PostgreSQL holds as completed; Redis held %s once both were answered; answer: %s",
              left, retry.body())
          .isEqualTo(201);
      assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
      assertThat(retry.json().getString("id")).isEqualTo(paid.json().getString("id"));
    }
  }
}
