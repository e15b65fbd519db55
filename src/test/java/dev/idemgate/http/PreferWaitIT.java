package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static dev.idemgate.support.Waits.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * {@code Prefer: wait=N} over HTTP: which requests wait, and that {@code Preference-Applied} (RFC 7240
 * §3) goes on exactly the answers of requests that waited for a twin in flight. A {@code tok_slow}
 * payment holds its key in flight for {@link #SLOW_MS}.
 */
class PreferWaitIT {
  private static final long SLOW_MS = 3_000;
  private static TestGateway gateway;
  private static Http http;
  private static TestDb db;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_SLOW_MS", String.valueOf(SLOW_MS)));
    http = new Http();
    db = new TestDb(http.vertx());
  }

  @AfterAll
  static void stop() {
    db.close();
    http.close();
    gateway.close();
  }

  /** Sends a slow payment under {@code key} and returns once its claim is PROCESSING: the key is in flight. */
  private static Future<Reply> inFlight(String key, String body, Map<String, String> headers) {
    Future<Reply> first = http.payAsync(gateway.apiPort(), KEY_A, key, body, headers);
    eventually(Duration.ofSeconds(5), () -> "PROCESSING".equals(db.scalar("SELECT state FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key)), "the first request is in flight");
    return first;
  }

  private static Future<Reply> twin(String key, String body, MultiMap headers) {
    return http.payAsync(gateway.apiPort(), KEY_A, key, body, headers);
  }

  private static MultiMap prefer(String... lines) {
    MultiMap headers = MultiMap.caseInsensitiveMultiMap();
    for (String line : lines) {
      headers.add("Prefer", line);
    }
    return headers;
  }

  @Test
  @DisplayName("a new payment with Prefer: wait=5 gets no Preference-Applied; a twin that waited for it gets one, with the wait capped")
  void appliedOnlyToTwinsThatWaited() {
    String key = Http.newKey();
    String body = Http.payment(2100, "tok_slow").encode();
    Future<Reply> first = inFlight(key, body, Map.of("Prefer", "wait=5"));
    Future<Reply> waitedFive = twin(key, body, prefer("wait=5"));
    Future<Reply> waitedSixty = twin(key, body, prefer("wait=60"));

    Reply original = Http.await(first);
    assertThat(original.status()).isEqualTo(201);
    assertThat(original.header("Preference-Applied")).as("a new payment waits for nothing").isNull();
    for (Future<Reply> waiting : List.of(waitedFive, waitedSixty)) {
      Reply waited = Http.await(waiting);
      assertThat(waited.status()).isEqualTo(201);
      assertThat(waited.header("Idempotent-Replayed")).isEqualTo("true");
      assertThat(waited.body()).isEqualTo(original.body());
    }
    assertThat(Http.await(waitedFive).header("Preference-Applied")).isEqualTo("wait=5");
    assertThat(Http.await(waitedSixty).header("Preference-Applied")).as("the wait used: 60 s capped")
        .isEqualTo("wait=" + ApiVerticle.MAX_WAIT_SECONDS);

    Reply replay = Http.await(twin(key, body, prefer("wait=5")));
    assertThat(replay.status()).isEqualTo(201);
    assertThat(replay.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(replay.header("Preference-Applied")).as("a replay of a completed key waits for nothing").isNull();
  }

  @Test
  @DisplayName("on a key in flight, a 409 says Preference-Applied when it came after a wait that ran out, not when given at once")
  void conflictAfterAWaitSaysSo() {
    String key = Http.newKey();
    String body = Http.payment(2200, "tok_slow").encode();
    Future<Reply> first = inFlight(key, body, Map.of());
    Reply ranOut = Http.await(twin(key, body, prefer("wait=1")));
    Reply atOnce = Http.await(twin(key, body, prefer("wait=0")));
    Reply without = Http.await(twin(key, body, prefer()));
    assertThat(Http.await(first).status()).isEqualTo(201);

    assertThat(ranOut.status()).isEqualTo(409);
    assertThat(ranOut.header("Preference-Applied")).isEqualTo("wait=1");
    assertThat(atOnce.status()).isEqualTo(409);
    assertThat(atOnce.header("Preference-Applied")).isNull();
    assertThat(without.status()).isEqualTo(409);
    assertThat(without.header("Preference-Applied")).isNull();
  }

  @Test
  @DisplayName("a wait inside a quoted string, or after a first wait that is no number, is no wait: 409 at once; a wait on a second Prefer line waits")
  void onlyARealFirstWaitWaits() {
    String key = Http.newKey();
    String body = Http.payment(2300, "tok_slow").encode();
    Future<Reply> first = inFlight(key, body, Map.of());
    Future<Reply> quoted = twin(key, body, prefer("note=\"a, wait=5, b\""));
    Future<Reply> twice = twin(key, body, prefer("wait=soon", "wait=5"));
    Future<Reply> secondLine = twin(key, body, prefer("respond-async", "wait=5"));
    Reply original = Http.await(first);
    assertThat(original.status()).isEqualTo(201);

    for (Future<Reply> noWait : List.of(quoted, twice)) {
      assertThat(Http.await(noWait).status()).isEqualTo(409);
      assertThat(Http.await(noWait).header("Preference-Applied")).isNull();
    }
    Reply waited = Http.await(secondLine);
    assertThat(waited.status()).isEqualTo(201);
    assertThat(waited.body()).isEqualTo(original.body());
    assertThat(waited.header("Preference-Applied")).isEqualTo("wait=5");
  }
}
