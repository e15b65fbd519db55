package dev.idemgate.idempotency;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A retry whose PostgreSQL claim starts before its key expires and reads the record after it did
 * (the claim statement waited on the record's row lock, or the gateway's clock runs ahead of
 * PostgreSQL's): the INSERT does not take the key over (its now() is before the expiry), the read
 * finds the COMPLETED record, and the replay's Redis write is skipped because the stored answer has
 * already expired (RedisGate.complete, ttl <= 0). The request's own Redis claim is then never
 * replaced nor released, so the key answers 409 "in flight" for a whole lease although nothing is
 * in flight and PostgreSQL holds it as expired (new).
 */
class ExpiryStraddlingClaimIT {

  @Test
  @DisplayName("a key past its expiry is a new payment, even after a retry whose claim straddled the expiry "
      + "(not 409 idempotency_key_in_use for a lease from a Redis claim nobody frees)")
  void expiredKeyIsNewAfterAStraddlingRetry() {
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx());
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_KEY_TTL", "5s",
             "IDEMGATE_LEASE", "30s",
             "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      String key = Http.newKey();
      String body = Http.payment(4_444, "tok_visa").encode();
      Http.Reply first = Http.await(http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of()));
      assertThat(first.status()).as(first.body()).isEqualTo(201);
      long expiresAtMs = ((Number) db.scalar("SELECT (extract(epoch FROM expires_at) * 1000)::bigint "
          + "FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key)).longValue();

      // Some seconds before the expiry, Redis has lost the key (a restart, a failover, an eviction, or
      // the completion's best-effort SET that failed): the retry claims in Redis and asks PostgreSQL.
      // 2.5 s before it, so that on a loaded machine too the retry's claim starts before the expiry;
      // the row stays locked until just after it, under the 5 s store_timeout.
      Waits.sleep(Math.max(0, expiresAtMs - 2_500 - System.currentTimeMillis()));
      Redis redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
      String redisKey = RedisGate.redisKey(MERCHANT_A, new IdempotencyKey(key));
      try {
        Http.await(redis.send(Request.cmd(Command.DEL).arg(redisKey)));
        Future<Http.Reply> retry;
        // The record's row is locked (a long transaction, a vacuum): the claim statement starts
        // before the expiry and reads the record after it (as with a gateway clock ahead of PostgreSQL's).
        try (TestDb.RecordLock lock = db.lockRecord(MERCHANT_A, key)) {
          retry = http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of());
          Waits.sleep(Math.max(300, expiresAtMs + 300 - System.currentTimeMillis()));
          assertThat(retry.isComplete()).as("the retry's claim waits for the row lock").isFalse();
        }
        // The straddling retry itself may replay the old answer: it came before the expiry.
        assertThat(Http.await(retry).status()).isEqualTo(201);

        Waits.sleep(Math.max(0, expiresAtMs + 1_500 - System.currentTimeMillis()));
        Response held = Http.await(redis.send(Request.cmd(Command.GET).arg(redisKey)));
        Http.Reply after = Http.await(http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of()));
        assertThat(after.status())
            .as("1.5 s past the key's expiry nothing is in flight and PostgreSQL holds the key as expired, so the "
                + "same key is a new payment (201); Redis still holds %s; answer: %s", held, after.body())
            .isEqualTo(201);
        assertThat(after.header("Idempotent-Replayed")).isNull();
        assertThat(after.json().getString("id")).isNotEqualTo(first.json().getString("id"));
      } finally {
        redis.close();
      }
    }
  }
}
