package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static dev.idemgate.support.Waits.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.CompletionSubscribers;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.ProxiedPostgres;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import java.net.URI;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * {@code Prefer: wait=N} when the twin a request waits for ends with nothing stored for it to replay:
 * the waiter is woken then and answers what a retry would get at that moment, not at the end of its
 * wait. The gateway reaches PostgreSQL through a FaultProxy, which the tests hang or refuse.
 */
class PreferWaitTwinEndIT {
  private static final int WAIT_SECONDS = 10;
  private static final long STORE_TIMEOUT_MS = 2_000;
  /** Every provider call takes this long: the window in which a twin's charge is in flight. */
  private static final long PROVIDER_LATENCY_MS = 2_000;
  /** Well under the wait: a waiter that sat its wait out answers after WAIT_SECONDS and more. */
  private static final long ANSWERED_WITHIN_MS = 7_000;
  private static ProxiedPostgres postgres;
  private static TestGateway gateway;
  private static Http http;
  private static TestDb db;

  @BeforeAll
  static void start() {
    postgres = ProxiedPostgres.start();
    gateway = TestGateway.start(Map.of(
        "IDEMGATE_PG_URL", postgres.url(),
        "IDEMGATE_STORE_TIMEOUT", STORE_TIMEOUT_MS + "ms",
        "IDEMGATE_SIMULATOR_LATENCY_MS", String.valueOf(PROVIDER_LATENCY_MS)));
    http = new Http();
    db = new TestDb(http.vertx());
  }

  @AfterEach
  void storeBack() {
    postgres.proxy().cutAll(); // bytes a blackhole dropped are gone: no connection may go on after them
    postgres.proxy().pass();
  }

  @AfterAll
  static void stop() {
    db.close();
    http.close();
    gateway.close();
    postgres.close();
  }

  @Test
  @DisplayName("a twin answered 503 store_unavailable wakes the request waiting for it (Prefer: wait=10), which "
      + "answers at once what a retry gets then, not after its 10 s")
  void twinAnswered503WakesItsWaiter() {
    String key = Http.newKey();
    String body = Http.payment(4_100, "tok_visa").encode();
    postgres.proxy().blackhole(); // the claim hangs until store_timeout, then 503
    Future<Reply> first = http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of());
    eventually(Duration.ofSeconds(5), () -> redisRecord(key) != null && redisRecord(key).startsWith("P|"),
        "the first request holds the key in Redis");

    long sent = System.nanoTime();
    Future<Reply> waiter = http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of("Prefer", "wait=" + WAIT_SECONDS));
    assertThat(Http.await(first).status()).as("the twin").isEqualTo(503);
    Reply waited = Http.await(waiter);
    long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sent);

    // Woken by the twin's end, it looked again as a retry would: the key was free, and its own claim
    // met the store still down.
    assertThat(waited.status()).as(waited.body()).isEqualTo(503);
    assertThat(waited.json().getString("code")).isEqualTo("store_unavailable");
    assertThat(waited.header("Preference-Applied")).isEqualTo("wait=" + WAIT_SECONDS);
    assertThat(tookMs).as("ms until the waiter was answered").isLessThan(ANSWERED_WITHIN_MS);
    storeBack();
    assertThat(SimulatorLog.charges(http, gateway, MERCHANT_A, key)).isZero();
  }

  @Test
  @DisplayName("a twin answered 502 whose release PostgreSQL did not take (the key held until recovery frees it) "
      + "wakes the request waiting for it, which answers at once what a retry gets then")
  void twinAnswered502KeyHeldWakesItsWaiter() {
    String key = Http.newKey();
    String body = Http.payment(4_200, "tok_provider_down").encode();
    Future<Reply> first = http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of());
    eventually(Duration.ofSeconds(5), () -> "PROCESSING".equals(db.keyState(MERCHANT_A, key)),
        "the first request's charge is under way");

    long sent = System.nanoTime();
    Future<Reply> waiter = http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of("Prefer", "wait=" + WAIT_SECONDS));
    eventually(Duration.ofSeconds(5), () -> CompletionSubscribers.of(redisPort(), MERCHANT_A, key) > 0,
        "the waiter found the key in flight and subscribed to its completion");
    // The release, once the provider says it did not charge, fails at once.
    postgres.proxy().refuse();
    postgres.proxy().cutAll();
    Reply down = Http.await(first);
    assertThat(down.status()).as(down.body()).isEqualTo(502);
    assertThat(down.json().getString("detail")).as("the release was not taken").contains("stays in use");
    Reply waited = Http.await(waiter);
    long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sent);

    assertThat(waited.status()).as(waited.body()).isEqualTo(503); // the store still refuses: what a retry gets
    assertThat(waited.header("Preference-Applied")).isEqualTo("wait=" + WAIT_SECONDS);
    assertThat(tookMs).as("ms until the waiter was answered").isLessThan(ANSWERED_WITHIN_MS);
  }

  private static String redisRecord(String key) {
    return RespCommand.call(redisPort(), "GET", RedisGate.redisKey(MERCHANT_A, new IdempotencyKey(key)));
  }

  private static int redisPort() {
    return URI.create(TestGateway.redisUrl()).getPort();
  }
}
