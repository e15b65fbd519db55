package dev.idemgate.faults;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.GatewayProcess;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.ScratchDatabase;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.json.JsonObject;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The 409 of a key in flight says when a retry can expect an answer. A holder that is alive answers
 * within provider_timeout + store_timeout + 1 s of its claim (here 4 s), so a young claim's retry is
 * told 1 s. Past that the holder is presumed gone: the answer comes once recovery settles the record
 * (lease + takeover grace + a recovery pass + a second, here 8 + 3 + 1 + 1 = 13 s after the claim),
 * and Retry-After says so. Told 1 s instead, a client with a small retry budget gives up long before
 * and may pay again under a new key.
 *
 * <p>On a database of its own: other tests' recovery passes on the shared one, with their own
 * settings, would settle the dead holder's record at other moments.
 */
class DeadHolderRetryAfterIT {
  private static Http http;
  private static ScratchDatabase scratch;
  private static TestGateway survivor;
  private static TestDb db;
  private static Redis redis;

  private static Map<String, String> settings() {
    Map<String, String> settings = new HashMap<>();
    settings.put("IDEMGATE_PG_URL", scratch.url());
    settings.put("IDEMGATE_LEASE", "8s");
    settings.put("IDEMGATE_PROVIDER_TIMEOUT", "2s");
    settings.put("IDEMGATE_STORE_TIMEOUT", "1s");
    settings.put("IDEMGATE_RECOVERY_INTERVAL", "1s");
    settings.put("IDEMGATE_SIMULATOR_SLOW_MS", "1500");
    settings.put("IDEMGATE_REPLAY_CACHE_ENTRIES", "0");
    return settings;
  }

  @BeforeAll
  static void start() {
    http = new Http();
    scratch = ScratchDatabase.create(http.vertx(), "idemgate_retryafter");
    survivor = TestGateway.start(settings());
    db = new TestDb(http.vertx(), scratch.url());
    redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
  }

  @AfterAll
  static void stop() {
    Http.await(redis.close());
    db.close();
    survivor.close();
    scratch.close();
    http.close();
  }

  private static Reply pay(String key, JsonObject body) {
    return http.pay(survivor.apiPort(), KEY_A, key, body);
  }

  /** The claim's age on PostgreSQL's clock, null while there is no PROCESSING record. */
  private static Long processingAgeMs(String key) {
    Object age = db.scalar("SELECT floor(extract(epoch FROM now() - created_at) * 1000)::bigint "
        + "FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2 AND state = 'PROCESSING'",
        MERCHANT_A, key);
    return (Long) age;
  }

  private static String inRedis(String key) {
    Response value = Http.await(redis.send(Request.cmd(Command.GET).arg(RedisGate.redisKey(MERCHANT_A, new IdempotencyKey(key)))));
    return value == null ? null : value.toString();
  }

  /** {@code idemgate_requests_total} of {@code outcome}, from the survivor's management port. */
  private static double requests(String outcome) {
    String scrape = http.get(survivor.managementPort(), "/metrics", null).body();
    return Scrape.value(scrape, "idemgate_requests_total{outcome=\"" + outcome + "\"}").orElse(0);
  }

  private static int retryAfter(Reply reply) {
    assertThat(reply.status()).as(reply.body()).isEqualTo(409);
    assertThat(reply.json().getString("code")).isEqualTo("idempotency_key_in_use");
    return Integer.parseInt(reply.header("Retry-After"));
  }

  @Test
  @DisplayName("a pod killed mid-payment: once its claim is older than a live holder takes, the retry's 409 says "
      + "Retry-After until recovery settles the record (from Redis's claim, and from PostgreSQL's once Redis's ran out), "
      + "and a retry at that moment gets an answer, not 409")
  void deadHolderRetryAfterPointsAtRecovery() {
    String key = Http.newKey();
    JsonObject body = Http.payment(4_100, "tok_slow");
    Map<String, String> doomedSettings = settings();
    // Its charge hangs until the kill: the claim is left PROCESSING, its Redis claim in place.
    doomedSettings.put("IDEMGATE_PROVIDER_TIMEOUT", "30s");
    doomedSettings.put("IDEMGATE_SIMULATOR_SLOW_MS", "60000");
    try (GatewayProcess doomed = GatewayProcess.start(doomedSettings).awaitReady()) {
      Future<Reply> cut = http.payAsync(doomed.apiPort(), KEY_A, key, body.encode(), Map.of());
      Waits.eventually(Duration.ofSeconds(10), () -> processingAgeMs(key) != null, "the doomed pod claims the key");
      doomed.kill();
      cut.otherwiseEmpty();
    }
    assertThat(inRedis(key)).as("the dead pod's Redis claim").startsWith("P|");

    double conflictsBefore = requests("in_flight_conflict");
    double awaitingRecoveryBefore = requests("in_flight_awaiting_recovery");
    Reply young = pay(key, body);
    assertThat(retryAfter(young)).as("a claim younger than a live holder takes: " + young.body()).isEqualTo(1);
    // A request is counted once its answer has gone out (the end handler): the client may read the
    // answer a moment before the counter moves.
    Waits.eventually(Duration.ofSeconds(5), () -> requests("in_flight_conflict") == conflictsBefore + 1,
        () -> "a young claim's 409 counted in_flight_conflict (nothing tells its holder dead): "
            + requests("in_flight_conflict") + " after " + conflictsBefore);

    Waits.eventually(Duration.ofSeconds(10), () -> {
      Long claimAge = processingAgeMs(key);
      return claimAge != null && claimAge >= 5_000;
    }, "the claim is 5 s old");
    assertThat(inRedis(key)).as("the dead pod's Redis claim, 3 s before its lease ends").startsWith("P|");
    Reply fromRedis = pay(key, body);
    long fromRedisAt = System.nanoTime();
    int fromRedisSeconds = retryAfter(fromRedis);
    System.out.println("409 from Redis's claim: Retry-After " + fromRedisSeconds + ", " + fromRedis.body());
    assertThat(fromRedisSeconds).as("Retry-After 5 s after the claim (recovery settles it about 13 s after)")
        .isBetween(6, 9);
    assertThat(fromRedis.json().getString("detail")).contains("recovery").doesNotContain("new key");

    Waits.eventually(Duration.ofSeconds(10), () -> inRedis(key) == null, "the dead pod's Redis claim runs out");
    Long age = processingAgeMs(key);
    assertThat(age).as("still PROCESSING, recovery not yet past its grace").isNotNull().isLessThan(10_500L);
    Reply fromStore = pay(key, body);
    long fromStoreAt = System.nanoTime();
    int fromStoreSeconds = retryAfter(fromStore);
    System.out.println("409 from PostgreSQL's claim at " + age + " ms: Retry-After " + fromStoreSeconds);
    assertThat(fromStore.json().getString("detail")).contains("recovery").doesNotContain("new key");
    long pointedByRedisMs = (fromRedisAt - fromStoreAt) / 1_000_000 + fromRedisSeconds * 1_000L;
    assertThat(Math.abs(pointedByRedisMs - fromStoreSeconds * 1_000L))
        .as("both 409s point at the same moment, within the rounding").isLessThanOrEqualTo(1_500L);

    // An operator alerting on in_flight_conflict (retry storms, a client misbehaving) is not woken
    // by a dead pod's claim: those 409s wait for recovery, and are counted as such.
    Waits.eventually(Duration.ofSeconds(5), () -> requests("in_flight_awaiting_recovery") == awaitingRecoveryBefore + 2,
        () -> "the 409s of a holder presumed gone counted in_flight_awaiting_recovery: "
            + requests("in_flight_awaiting_recovery") + " after " + awaitingRecoveryBefore);
    assertThat(requests("in_flight_conflict")).as("in_flight_conflict: the young claim's 409 only")
        .isEqualTo(conflictsBefore + 1);

    Waits.sleep(fromStoreSeconds * 1_000L);
    // Recovery's pass and its inquiry take their time on a loaded machine: the answer may come a
    // moment after the one told, not a lease later.
    Reply[] settled = new Reply[1];
    Waits.eventually(Duration.ofSeconds(4), () -> (settled[0] = pay(key, body)).status() != 409,
        "a retry within 4 s of the moment Retry-After told gets an answer, not 409");
    System.out.println("retry after Retry-After: " + settled[0].status() + " " + settled[0].body());
  }

  @Test
  @DisplayName("a twin of a payment whose holder is alive and charging still gets 409 with Retry-After 1, then the replay")
  void liveTwinStillHearsOneSecond() {
    String key = Http.newKey();
    JsonObject body = Http.payment(4_200, "tok_slow");
    Future<Reply> first = http.payAsync(survivor.apiPort(), KEY_A, key, body.encode(), Map.of());
    Waits.eventually(Duration.ofSeconds(5), () -> processingAgeMs(key) != null, "the first request claims the key");

    Reply twin = pay(key, body);
    assertThat(retryAfter(twin)).isEqualTo(1);
    assertThat(twin.json().getString("detail")).doesNotContain("recovery");

    Reply done = Http.await(first);
    assertThat(done.status()).isEqualTo(201);
    assertThat(pay(key, body).body()).isEqualTo(done.body());
  }
}
