package dev.idemgate.idempotency;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.json.JsonObject;
import io.vertx.pgclient.PgBuilder;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Tuple;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The core promise under pressure: one charge per key, whatever the concurrency, and Postgres as the truth. */
class ExactlyOnceStormIT {
  private static TestGateway gateway;
  private static Http http;
  private static Pool pg;

  @BeforeAll
  static void start() {
    // A little provider latency keeps the first request in flight while the storm arrives. The
    // in-process replay cache is off: these tests are about what Redis and PostgreSQL decide
    // (ReplayCacheIT covers the cache).
    gateway = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_LATENCY_MS", "50", "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"));
    http = new Http();
    pg = PgBuilder.pool().connectingTo(dev.idemgate.storage.Postgres.connectOptions(TestGateway.pgUrl()))
        .using(http.vertx()).build();
  }

  @AfterAll
  static void stop() {
    Http.await(pg.close());
    http.close();
    gateway.close();
  }

  private static int ledgerRows(String merchant, String key) {
    return Http.await(pg.preparedQuery(
        "SELECT count(*) FROM idemgate.payments WHERE provider_key = $1")
        .execute(Tuple.of(ProviderKeys.of(merchant, key)))).iterator().next().getInteger(0);
  }

  private static int charges(String merchant, String key) {
    Reply log = http.get(gateway.managementPort(),
        "/admin/simulator/charges?idempotency_key=" + ProviderKeys.of(merchant, key), TestGateway.ADMIN_TOKEN);
    return log.json().getJsonArray("charges").size();
  }

  @Test
  @DisplayName("200 concurrent requests on one fresh key: one charge, one ledger row, every other answer a 409 or an identical replay, no 5xx")
  void stormOnOneKey() {
    String key = Http.newKey();
    String body = Http.payment(1234, "tok_visa").encode();
    List<Future<Reply>> replies = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      replies.add(http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of()));
    }
    List<Reply> done = replies.stream().map(Http::await).collect(Collectors.toList());

    Set<Integer> statuses = done.stream().map(Reply::status).collect(Collectors.toSet());
    assertThat(statuses).isSubsetOf(Set.of(201, 409));
    List<Reply> created = done.stream().filter(r -> r.status() == 201).collect(Collectors.toList());
    assertThat(created).isNotEmpty();
    assertThat(created.stream().map(Reply::body).distinct()).hasSize(1);
    assertThat(created.stream().filter(r -> r.header("Idempotent-Replayed") == null)).hasSize(1);
    assertThat(done.stream().filter(r -> r.status() == 409))
        .allSatisfy(r -> assertThat(r.json().getString("code")).isEqualTo("idempotency_key_in_use"));
    assertThat(charges(TestGateway.MERCHANT_A, key)).isEqualTo(1);
    assertThat(ledgerRows(TestGateway.MERCHANT_A, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("a completed key deleted from Redis is replayed from Postgres with no new charge, and Redis is refilled")
  void redisLosesCompletedKey() {
    String key = Http.newKey();
    JsonObject body = Http.payment(777, "tok_visa");
    Reply first = http.pay(gateway.apiPort(), KEY_A, key, body);
    assertThat(first.status()).isEqualTo(201);

    String redisKey = RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(key));
    Redis redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
    try {
      assertThat(Http.await(redis.send(Request.cmd(Command.DEL).arg(redisKey))).toInteger()).isEqualTo(1);

      Reply replay = http.pay(gateway.apiPort(), KEY_A, key, body);
      assertThat(replay.status()).isEqualTo(201);
      assertThat(replay.body()).isEqualTo(first.body());
      assertThat(replay.header("Idempotent-Replayed")).isEqualTo("true");
      assertThat(charges(TestGateway.MERCHANT_A, key)).isEqualTo(1);
      assertThat(ledgerRows(TestGateway.MERCHANT_A, key)).isEqualTo(1);
      String refilled = Http.await(redis.send(Request.cmd(Command.GET).arg(redisKey))).toString();
      assertThat(refilled).startsWith("C|");
    } finally {
      redis.close();
    }
  }

  @Test
  @DisplayName("with Redis keys gone mid-storm, Postgres alone still allows exactly one charge")
  void stormWithRedisForgetting() {
    String key = Http.newKey();
    String body = Http.payment(4321, "tok_slow").encode();
    String redisKey = RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(key));
    Redis redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
    try {
      List<Future<Reply>> replies = new ArrayList<>();
      for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 20; i++) {
          replies.add(http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of()));
        }
        // Redis "fails over" and forgets the claim while the first request is still charging.
        Http.await(redis.send(Request.cmd(Command.DEL).arg(redisKey)));
      }
      List<Reply> done = replies.stream().map(Http::await).collect(Collectors.toList());
      assertThat(done.stream().map(Reply::status).collect(Collectors.toSet())).isSubsetOf(Set.of(201, 409));
      assertThat(charges(TestGateway.MERCHANT_A, key)).isEqualTo(1);
      assertThat(ledgerRows(TestGateway.MERCHANT_A, key)).isEqualTo(1);
    } finally {
      redis.close();
    }
  }
}
