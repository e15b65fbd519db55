package dev.idemgate.idempotency;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.payment.PaymentJson;
import dev.idemgate.storage.Migrations;
import dev.idemgate.storage.Postgres;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.pgclient.PgBuilder;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * Grouped claims against the real schema: one request's value must not fail the payments grouped
 * with it, and two instances claiming the same keys at once must not deadlock.
 */
class GroupedWritesIT {
  private static final String MERCHANT = "grouped-writes";
  private static Vertx vertx;
  private static Pool poolA;
  private static Pool poolB;

  @BeforeAll
  static void start() {
    Migrations.migrate(TestGateway.pgUrl());
    vertx = Vertx.vertx();
    poolA = pool();
    poolB = pool();
  }

  private static Pool pool() {
    return PgBuilder.pool().with(new PoolOptions().setMaxSize(2))
        .connectingTo(Postgres.connectOptions(TestGateway.pgUrl())).using(vertx).build();
  }

  @AfterAll
  static void stop() {
    Http.await(poolA.close());
    Http.await(poolB.close());
    Http.await(vertx.close());
  }

  private static IdempotencyStore store(Pool pool, Context context, List<Integer> claimGroups) {
    return new IdempotencyStore(pool, context, 1, Duration.ofSeconds(5), Duration.ofSeconds(30), "simulator",
        (operation, payments) -> {
          if (operation.equals("claim")) {
            claimGroups.add(payments);
          }
        });
  }

  private static ClaimRequest claim(String key, JsonObject metadata) {
    Instant now = PaymentJson.createdNow();
    return new ClaimRequest(MERCHANT, new IdempotencyKey(key), "fp-" + key, PaymentJson.newPaymentId(now), 1_000, "EUR",
        null, null, metadata, now);
  }

  /** Runs {@code action} on {@code context}: the claims it submits there form one group. */
  private static <T> T onContext(Context context, Supplier<Future<T>> action) {
    Promise<T> result = Promise.promise();
    context.runOnContext(v -> action.get().onComplete(result));
    return Http.await(result.future());
  }

  @Test
  @DisplayName("a value PostgreSQL refuses fails its own claim only: the valid claim of the same group is claimed")
  void oneBadValueFailsOnlyItsOwnClaim() {
    Context context = vertx.getOrCreateContext();
    List<Integer> groups = Collections.synchronizedList(new ArrayList<>());
    IdempotencyStore store = store(poolA, context, groups);
    String good = Http.newKey();
    // The parser refuses U+0000 in metadata; here it reaches the database, as any value it misses would.
    String bad = Http.newKey();
    List<Future<StoreClaim>> claims = onContext(context, () -> {
      List<Future<StoreClaim>> both = List.of(store.claim(claim(good, null)),
          store.claim(claim(bad, new JsonObject().put("note", "a\u0000b"))));
      return Future.join(both).transform(done -> Future.succeededFuture(both));
    });

    assertThat(claims.get(0).result()).isInstanceOf(StoreClaim.Claimed.class);
    assertThat(claims.get(1).failed()).isTrue();
    assertThat(claims.get(1).cause()).isInstanceOf(StoreUnavailable.class);
    assertThat(groups).as("one statement for both, then one each").containsExactly(2, 1, 1);
  }

  @Test
  @DisplayName("two instances claiming the same keys in opposite orders at once never deadlock: each key is claimed once")
  void oppositeOrdersDoNotDeadlock() {
    Context contextA = vertx.getOrCreateContext();
    Context contextB = vertx.getOrCreateContext();
    IdempotencyStore storeA = store(poolA, contextA, new ArrayList<>());
    IdempotencyStore storeB = store(poolB, contextB, new ArrayList<>());
    for (int round = 0; round < 5; round++) {
      List<String> keys = new ArrayList<>();
      for (int i = 0; i < 200; i++) {
        keys.add(Http.newKey());
      }
      List<String> reversed = new ArrayList<>(keys);
      Collections.reverse(reversed);
      Promise<List<StoreClaim>> a = Promise.promise();
      Promise<List<StoreClaim>> b = Promise.promise();
      contextA.runOnContext(v -> claimAll(storeA, keys).onComplete(a));
      contextB.runOnContext(v -> claimAll(storeB, reversed).onComplete(b));
      List<StoreClaim> byA = Http.await(a.future());
      List<StoreClaim> byB = Http.await(b.future());
      Collections.reverse(byB);
      for (int i = 0; i < keys.size(); i++) {
        long claimed = List.of(byA.get(i), byB.get(i)).stream().filter(c -> c instanceof StoreClaim.Claimed).count();
        assertThat(claimed).as("claims of key %d in round %d: %s, %s", i, round, byA.get(i), byB.get(i)).isEqualTo(1);
      }
    }
  }

  /** Submits every claim in this turn (so they form one group) and waits for all; fails if any failed. */
  private static Future<List<StoreClaim>> claimAll(IdempotencyStore store, List<String> keys) {
    List<Future<StoreClaim>> claims = new ArrayList<>();
    keys.forEach(key -> claims.add(store.claim(claim(key, null))));
    return Future.all(claims).map(done -> {
      List<StoreClaim> out = new ArrayList<>();
      claims.forEach(c -> out.add(c.result()));
      return out;
    });
  }
}
