package dev.idemgate.idempotency;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.payment.PaymentJson;
import dev.idemgate.storage.Migrations;
import dev.idemgate.storage.Postgres;
import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayPostgres;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.pgclient.PgBuilder;
import io.vertx.pgclient.PgException;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * Grouped claims and completions against the real schema: one request's value must not fail the
 * payments grouped with it, two instances reaching the same keys at once must not deadlock, and a
 * group that PostgreSQL ends as a deadlock's victim is written after all.
 */
class GroupedWritesIT {
  private static final String MERCHANT = "grouped-writes";
  /** IdempotencyStore's MAX_GROUP. */
  private static final int FULL_GROUP = 256;
  /** Server settings for a small lock table, a few hundred locks, quickly filled. */
  private static final String[] SMALL_LOCK_TABLE = {"max_locks_per_transaction=10", "max_connections=10",
      "max_prepared_transactions=0", "autovacuum_max_workers=1", "max_worker_processes=0", "max_wal_senders=0",
      "wal_level=minimal"};
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
    // Its claims stay PROCESSING: left in the shared database, a hundred of them filled the first
    // page of /admin/pending (oldest first, 100) and RecoveryIT's record there was crowded out.
    Http.await(poolA.preparedQuery("DELETE FROM idemgate.idempotency_keys WHERE merchant_id = $1").execute(Tuple.of(MERCHANT)));
    Http.await(poolA.preparedQuery("DELETE FROM idemgate.payments WHERE merchant_id = $1").execute(Tuple.of(MERCHANT)));
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
    return new ClaimRequest(MERCHANT, new IdempotencyKey(key), "fp-" + key, PaymentJson.newPaymentId(Instant.now()), 1_000, "EUR",
        null, null, metadata);
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
  @DisplayName("a record the claim cannot read (a COMPLETED one without its stored answer) fails its own key's claim "
      + "only: a claim of the same group is answered Claimed, not failed with it after its row committed")
  void unreadableRecordFailsOnlyItsOwnClaim() {
    Context context = vertx.getOrCreateContext();
    IdempotencyStore store = store(poolA, context, new ArrayList<>());
    String good = Http.newKey();
    String unreadable = Http.newKey();
    // A record the code never writes (a hand-made repair, say, or a later version's): reading it throws.
    Http.await(poolA.preparedQuery("""
        INSERT INTO idemgate.idempotency_keys (merchant_id, idempotency_key, fingerprint, state, epoch, generation,
          payment_id, provider_key, lease_expires_at, amount, currency, expires_at, frees_at, created_at)
        VALUES ($1, $2, $3, 'COMPLETED', 1, 1, $4, $5, now(), 1000, 'EUR', now() + interval '1 hour',
          now() + interval '1 hour', now())""")
        .execute(Tuple.of(MERCHANT, unreadable, "fp-" + unreadable, PaymentJson.newPaymentId(Instant.now()),
            "pk-" + unreadable)));
    List<Future<StoreClaim>> claims = onContext(context, () -> {
      List<Future<StoreClaim>> both = List.of(store.claim(claim(good, null)), store.claim(claim(unreadable, null)));
      return Future.join(both).transform(done -> Future.succeededFuture(both));
    });

    assertThat(claims.get(0).succeeded()).as("the good claim: %s", claims.get(0).cause()).isTrue();
    assertThat(claims.get(0).result()).isInstanceOf(StoreClaim.Claimed.class);
    assertThat(claims.get(1).failed()).as("the unreadable record's claim").isTrue();
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

  @Test
  @DisplayName("a claim group and a completion group of two instances that reach the same records in opposite orders never deadlock: both lock in key order")
  void claimAndCompletionGroupsDoNotDeadlock() {
    Context contextA = vertx.getOrCreateContext();
    Context contextB = vertx.getOrCreateContext();
    List<String> groupsA = Collections.synchronizedList(new ArrayList<>());
    List<String> groupsB = Collections.synchronizedList(new ArrayList<>());
    IdempotencyStore storeA = recordingStore(poolA, contextA, groupsA);
    IdempotencyStore storeB = recordingStore(poolB, contextB, groupsB);
    Pool holder = pool();
    try {
      for (int round = 0; round < 4; round++) {
        // B owns both keys; "a-" sorts before "b-".
        String first = "a-" + Http.newKey();
        String second = "b-" + Http.newKey();
        StoreClaim.Claimed firstOwned = (StoreClaim.Claimed) onContext(contextB, () -> storeB.claim(claim(first, null)));
        StoreClaim.Claimed secondOwned = (StoreClaim.Claimed) onContext(contextB, () -> storeB.claim(claim(second, null)));
        groupsA.clear();
        groupsB.clear();
        // A third session holds the first record while A claims both keys (retries of B's
        // clients) and B completes second, then first, so that both queue behind it. Were B's
        // completions written in that order, B would hold second, and when the third session lets
        // go and A takes the first record, A would wait for B and B for A: PostgreSQL ends one
        // of them after a second (it did, before completions were sorted).
        SqlConnection lock = Http.await(holder.getConnection());
        Http.await(lock.query("BEGIN").execute());
        lockRecord(lock, first);
        Promise<List<StoreClaim>> claims = Promise.promise();
        contextA.runOnContext(v -> claimAll(storeA, List.of(first, second)).onComplete(claims));
        Promise<List<Completion.Result>> completions = Promise.promise();
        contextB.runOnContext(v -> {
          List<Future<Completion.Result>> both = List.of(
              storeB.complete(MERCHANT, new IdempotencyKey(second), secondOwned.epoch(), succeeded(secondOwned)),
              storeB.complete(MERCHANT, new IdempotencyKey(first), firstOwned.epoch(), succeeded(firstOwned)));
          Future.all(both).map(done -> List.of(both.get(0).result(), both.get(1).result())).onComplete(completions);
        });
        sleep(300);
        Http.await(lock.query("COMMIT").execute());
        Http.await(lock.close());

        assertThat(Http.await(completions.future())).as("round %d", round)
            .containsExactly(Completion.Result.RECORDED, Completion.Result.RECORDED);
        assertThat(Http.await(claims.future())).as("round %d: the retries are answered, none claims", round)
            .allSatisfy(c -> assertThat(c).isNotInstanceOf(StoreClaim.Claimed.class));
        assertThat(groupsA).as("round %d: A's one statement, no deadlock and no write tried alone", round)
            .containsExactly("claim 2");
        assertThat(groupsB).as("round %d: B's one statement", round).containsExactly("complete 2");
      }
    } finally {
      Http.await(holder.close());
    }
  }

  @Test
  @DisplayName("a claim group that PostgreSQL ends as a deadlock's victim is written write by write: its retries are answered, none fails")
  void aDeadlockVictimIsWrittenAfterAll() {
    Context contextA = vertx.getOrCreateContext();
    Context contextB = vertx.getOrCreateContext();
    List<String> groupsA = Collections.synchronizedList(new ArrayList<>());
    IdempotencyStore storeA = recordingStore(poolA, contextA, groupsA);
    IdempotencyStore storeB = store(poolB, contextB, new ArrayList<>());
    String first = "a-" + Http.newKey();
    String second = "b-" + Http.newKey();
    onContext(contextB, () -> storeB.claim(claim(first, null)));
    onContext(contextB, () -> storeB.claim(claim(second, null)));
    Pool holder = pool();
    try {
      // Another session takes the second record, A's claim group (retries of B's keys) takes the
      // first and waits for the second, then the other session asks for the first: a cycle. A has
      // waited longer, so its deadlock check (after deadlock_timeout, 1 s) runs first and ends
      // A's statement; the other session's check would run only after 10 s.
      SqlConnection other = Http.await(holder.getConnection());
      Http.await(other.query("BEGIN").execute());
      Http.await(other.query("SET LOCAL deadlock_timeout = '10s'").execute());
      lockRecord(other, second);
      Promise<List<StoreClaim>> claims = Promise.promise();
      contextA.runOnContext(v -> claimAll(storeA, List.of(first, second)).onComplete(claims));
      sleep(300);
      lockRecord(other, first); // returns once PostgreSQL has ended A's statement
      Http.await(other.query("COMMIT").execute());
      Http.await(other.close());

      assertThat(Http.await(claims.future())).as("the retries are answered, none claims")
          .allSatisfy(c -> assertThat(c).isInstanceOf(StoreClaim.InFlight.class));
      assertThat(groupsA).as("the group, ended by the deadlock, then each claim alone")
          .containsExactly("claim 2", "claim 1", "claim 1");
    } finally {
      Http.await(holder.close());
    }
  }

  @Test
  @DisplayName("one group holding two completions of one payment (a recovery pass's, fenced out by an operator's "
      + "verdict that took the record over, and the verdict's): only the write that landed is told RECORDED")
  void aPaymentTwiceInOneGroupIsToldWhatLanded() {
    Context context = vertx.getOrCreateContext();
    List<String> groups = Collections.synchronizedList(new ArrayList<>());
    IdempotencyStore store = recordingStore(poolA, context, groups);
    String key = Http.newKey();
    StoreClaim.Claimed owned = (StoreClaim.Claimed) onContext(context, () -> store.claim(claim(key, null)));
    // Taken over twice, as a recovery pass and then an operator's verdict take a record: each bumps the epoch.
    Http.await(poolA.preparedQuery("UPDATE idemgate.idempotency_keys SET epoch = epoch + 2 WHERE merchant_id = $1 "
        + "AND idempotency_key = $2").execute(Tuple.of(MERCHANT, key)));
    int pass = owned.epoch() + 1;
    int verdict = owned.epoch() + 2;
    List<Completion.Result> results = onContext(context, () -> {
      List<Future<Completion.Result>> both = List.of(
          store.complete(MERCHANT, new IdempotencyKey(key), pass, declined(owned)),
          store.complete(MERCHANT, new IdempotencyKey(key), verdict, succeeded(owned)));
      return Future.all(both).map(done -> List.of(both.get(0).result(), both.get(1).result()));
    });

    Object status = Http.await(poolA.preparedQuery("SELECT status FROM idemgate.payments WHERE id = $1")
        .execute(Tuple.of(owned.paymentId()))).iterator().next().getString("status");
    assertThat(status).as("the ledger holds the verdict's write").isEqualTo("succeeded");
    assertThat(results).as("what each writer is told (groups %s)", groups)
        .containsExactly(Completion.Result.FENCED, Completion.Result.RECORDED);
  }

  @Test
  @DisplayName("completions naming a charge id that is already another payment's, in the same group or in the ledger, "
      + "are written pending (202, asked about again), not succeeded: one payment only holds the charge")
  void aChargeIdIsOnePaymentsOnly() {
    Context context = vertx.getOrCreateContext();
    IdempotencyStore store = store(poolA, context, new ArrayList<>());
    String chargeId = "ch_same_" + Http.newKey();
    List<String> keys = List.of(Http.newKey(), Http.newKey(), Http.newKey());
    List<StoreClaim.Claimed> owned = new ArrayList<>();
    for (String key : keys) {
      owned.add((StoreClaim.Claimed) onContext(context, () -> store.claim(claim(key, null))));
    }
    // The first two in one group: the first in key order holds the charge, the other waits a round and finds it.
    List<Completion.Result> grouped = onContext(context, () -> {
      List<Future<Completion.Result>> both = List.of(
          store.complete(MERCHANT, new IdempotencyKey(keys.get(1)), owned.get(1).epoch(), succeeded(owned.get(1), chargeId)),
          store.complete(MERCHANT, new IdempotencyKey(keys.get(0)), owned.get(0).epoch(), succeeded(owned.get(0), chargeId)));
      return Future.all(both).map(done -> List.of(both.get(0).result(), both.get(1).result()));
    });
    boolean firstHolds = keys.get(0).compareTo(keys.get(1)) < 0;
    assertThat(grouped).containsExactly(firstHolds ? Completion.Result.CHARGE_TAKEN : Completion.Result.RECORDED,
        firstHolds ? Completion.Result.RECORDED : Completion.Result.CHARGE_TAKEN);
    // The third later, in a group of its own: the ledger's probe finds the charge.
    assertThat(onContext(context, () -> store.complete(MERCHANT, new IdempotencyKey(keys.get(2)), owned.get(2).epoch(),
        succeeded(owned.get(2), chargeId)))).isEqualTo(Completion.Result.CHARGE_TAKEN);

    List<String> ledger = new ArrayList<>();
    Http.await(poolA.preparedQuery("""
        SELECT p.status, p.provider_reference, k.state, k.response_status, k.next_inquiry_at IS NOT NULL AS asked_again
        FROM idemgate.payments p JOIN idemgate.idempotency_keys k ON k.payment_id = p.id
        WHERE p.merchant_id = $1 AND p.id = ANY($2) ORDER BY p.status DESC""")
        .execute(Tuple.tuple().addString(MERCHANT)
            .addArrayOfString(owned.stream().map(StoreClaim.Claimed::paymentId).toArray(String[]::new))))
        .forEach(row -> ledger.add(row.getString("status") + " " + row.getString("provider_reference") + " "
            + row.getString("state") + " " + row.getInteger("response_status") + " " + row.getBoolean("asked_again")));
    assertThat(ledger).containsExactly("succeeded " + chargeId + " COMPLETED 201 false", "pending null PENDING 202 true",
        "pending null PENDING 202 true");
  }

  @Test
  @DisplayName("two payments given the same new charge id, completed in transactions that overlap (two pods' groups): "
      + "the second waits for the first to commit and is written pending (202, the charge the first's), not succeeded")
  void overlappingCompletionsOfOneNewChargeId() {
    Context context = vertx.getOrCreateContext();
    IdempotencyStore store = store(poolA, context, new ArrayList<>());
    String chargeId = "ch_new_" + Http.newKey();
    IdempotencyKey firstKey = new IdempotencyKey(Http.newKey());
    IdempotencyKey secondKey = new IdempotencyKey(Http.newKey());
    StoreClaim.Claimed first = (StoreClaim.Claimed) onContext(context, () -> store.claim(claim(firstKey.value(), null)));
    StoreClaim.Claimed second = (StoreClaim.Claimed) onContext(context, () -> store.claim(claim(secondKey.value(), null)));
    SqlConnection otherPod = Http.await(poolB.getConnection());
    try (CapturedLogs logs = CapturedLogs.of(IdempotencyStore.class)) {
      // The first completion's statement has run and its transaction is still open, as another
      // pod's group is until it commits; the second is written meanwhile, by a group of its own.
      Http.await(otherPod.query("BEGIN").execute());
      assertThat(onContext(context, () -> store.completeOn(otherPod, MERCHANT, firstKey, first.epoch(),
          succeeded(first, chargeId)))).isEqualTo(Completion.Result.RECORDED);
      Promise<Completion.Result> secondWritten = Promise.promise();
      context.runOnContext(v -> store.complete(MERCHANT, secondKey, second.epoch(), succeeded(second, chargeId))
          .onComplete(secondWritten));
      sleep(300);
      boolean waited = !secondWritten.future().isComplete();
      Http.await(otherPod.query("COMMIT").execute());

      assertThat(Http.await(secondWritten.future()))
          .as("the second completion of charge %s, written while the first's transaction was open", chargeId)
          .isEqualTo(Completion.Result.CHARGE_TAKEN);
      assertThat(waited).as("the second waited for the first's commit").isTrue();
      assertThat(ledgerOf(List.of(first, second))).containsExactly("succeeded " + chargeId + " COMPLETED 201 false",
          "pending null PENDING 202 true");
      assertThat(logs.events()).extracting(ILoggingEvent::getFormattedMessage)
          .anyMatch(line -> line.contains(second.paymentId()) && line.contains("already the charge of payment " + first.paymentId()));
    } finally {
      Http.await(otherPod.close());
    }
  }

  @Test
  @DisplayName("a completion whose charge id no open transaction names does not wait for another one's")
  void anotherChargeIdDoesNotWait() {
    Context context = vertx.getOrCreateContext();
    IdempotencyStore store = store(poolA, context, new ArrayList<>());
    IdempotencyKey firstKey = new IdempotencyKey(Http.newKey());
    IdempotencyKey secondKey = new IdempotencyKey(Http.newKey());
    StoreClaim.Claimed first = (StoreClaim.Claimed) onContext(context, () -> store.claim(claim(firstKey.value(), null)));
    StoreClaim.Claimed second = (StoreClaim.Claimed) onContext(context, () -> store.claim(claim(secondKey.value(), null)));
    SqlConnection otherPod = Http.await(poolB.getConnection());
    try {
      Http.await(otherPod.query("BEGIN").execute());
      onContext(context, () -> store.completeOn(otherPod, MERCHANT, firstKey, first.epoch(), succeeded(first)));
      Promise<Completion.Result> secondWritten = Promise.promise();
      context.runOnContext(v -> store.complete(MERCHANT, secondKey, second.epoch(), succeeded(second))
          .onComplete(secondWritten));
      assertThat(secondWritten.future().toCompletionStage().toCompletableFuture().get(2, TimeUnit.SECONDS))
          .as("written while the other transaction is open").isEqualTo(Completion.Result.RECORDED);
      Http.await(otherPod.query("COMMIT").execute());
    } catch (Exception e) {
      throw new AssertionError("the completion of another charge id waited: " + e, e);
    } finally {
      Http.await(otherPod.close());
    }
  }

  @Test
  @DisplayName("a completion left pending on another payment's charge id keeps that charge id and the payment holding "
      + "it on its record (what /admin/pending shows); a later completion of the payment clears them, and so does the "
      + "key used again once free")
  void aChargeConflictStaysUntilTheRecordMovesOn() {
    Context context = vertx.getOrCreateContext();
    IdempotencyStore store = store(poolA, context, new ArrayList<>());
    String held = "ch_held_" + Http.newKey();
    String holderKey = Http.newKey();
    StoreClaim.Claimed holder = (StoreClaim.Claimed) onContext(context, () -> store.claim(claim(holderKey, null)));
    assertThat(onContext(context, () -> store.complete(MERCHANT, new IdempotencyKey(holderKey), holder.epoch(),
        succeeded(holder, held)))).isEqualTo(Completion.Result.RECORDED);
    assertThat(chargeConflict(holderKey)).as("a charge recorded as the payment's is no conflict").isEqualTo("null null");

    String key = Http.newKey();
    StoreClaim.Claimed taken = (StoreClaim.Claimed) onContext(context, () -> store.claim(claim(key, null)));
    assertThat(onContext(context, () -> store.complete(MERCHANT, new IdempotencyKey(key), taken.epoch(),
        succeeded(taken, held)))).isEqualTo(Completion.Result.CHARGE_TAKEN);
    assertThat(chargeConflict(key)).isEqualTo(held + " " + holder.paymentId());

    // The acquirer answers a charge of its own later (recovery completes through the same statement).
    assertThat(onContext(context, () -> store.complete(MERCHANT, new IdempotencyKey(key), taken.epoch(),
        succeeded(taken)))).isEqualTo(Completion.Result.RECORDED);
    assertThat(chargeConflict(key)).as("completed with its own charge").isEqualTo("null null");

    // A pod of an earlier version completes a record without touching the columns, so a completed one
    // may still carry them; once the key is free, its next use must not.
    Http.await(poolA.preparedQuery("UPDATE idemgate.idempotency_keys SET charge_conflict_reference = $3, "
            + "charge_conflict_with = $4, expires_at = now() - interval '1 second', frees_at = now() - interval '1 second' "
            + "WHERE merchant_id = $1 AND idempotency_key = $2")
        .execute(Tuple.of(MERCHANT, key, held, holder.paymentId())));
    assertThat(onContext(context, () -> store.claim(claim(key, null)))).isInstanceOf(StoreClaim.Claimed.class);
    assertThat(chargeConflict(key)).as("the key used again").isEqualTo("null null");
  }

  /** The record's charge conflict, "reference holder" ("null null" when none). */
  private static String chargeConflict(String key) {
    Row row = Http.await(poolA.preparedQuery("SELECT charge_conflict_reference, charge_conflict_with "
            + "FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2")
        .execute(Tuple.of(MERCHANT, key))).iterator().next();
    return row.getString("charge_conflict_reference") + " " + row.getString("charge_conflict_with");
  }

  @Test
  @DisplayName("one statement of a declined completion (not checked), a succeeded one of a new charge id and a succeeded "
      + "one of a charge id another payment holds, in that key order: each is told and written as its own position "
      + "decides (the holders' array lines up with the group's rows, NULL positions included)")
  void checkedAndUncheckedPositionsLineUp() {
    Context context = vertx.getOrCreateContext();
    List<String> groups = Collections.synchronizedList(new ArrayList<>());
    IdempotencyStore store = recordingStore(poolA, context, groups);
    String held = "ch_held_" + Http.newKey();
    String holderKey = Http.newKey();
    StoreClaim.Claimed holder = (StoreClaim.Claimed) onContext(context, () -> store.claim(claim(holderKey, null)));
    assertThat(onContext(context, () -> store.complete(MERCHANT, new IdempotencyKey(holderKey), holder.epoch(),
        succeeded(holder, held)))).isEqualTo(Completion.Result.RECORDED);
    // Key order is the statement's row order: the declined one first (a NULL position of the charge ids
    // checked), the one holding a new charge id, then the one whose charge id the holder has.
    String stem = Http.newKey();
    IdempotencyKey declinedKey = new IdempotencyKey("a-" + stem);
    IdempotencyKey newChargeKey = new IdempotencyKey("b-" + stem);
    IdempotencyKey takenKey = new IdempotencyKey("c-" + stem);
    StoreClaim.Claimed declined = (StoreClaim.Claimed) onContext(context, () -> store.claim(claim(declinedKey.value(), null)));
    StoreClaim.Claimed newCharge = (StoreClaim.Claimed) onContext(context, () -> store.claim(claim(newChargeKey.value(), null)));
    StoreClaim.Claimed taken = (StoreClaim.Claimed) onContext(context, () -> store.claim(claim(takenKey.value(), null)));
    groups.clear();
    List<Completion.Result> results;
    List<String> lines;
    try (CapturedLogs logs = CapturedLogs.of(IdempotencyStore.class)) {
      // Submitted in the reverse order: the statement sorts them.
      results = onContext(context, () -> {
        List<Future<Completion.Result>> all = List.of(
            store.complete(MERCHANT, takenKey, taken.epoch(), succeeded(taken, held)),
            store.complete(MERCHANT, newChargeKey, newCharge.epoch(), succeeded(newCharge)),
            store.complete(MERCHANT, declinedKey, declined.epoch(), declined(declined)));
        return Future.all(all).map(done -> List.of(all.get(0).result(), all.get(1).result(), all.get(2).result()));
      });
      lines = logs.events().stream().map(ILoggingEvent::getFormattedMessage).toList();
    }

    assertThat(groups).as("one statement for the three").containsExactly("complete 3");
    assertThat(results).as("what the completions of charge %s (held), a new charge and a decline are told", held)
        .containsExactly(Completion.Result.CHARGE_TAKEN, Completion.Result.RECORDED, Completion.Result.RECORDED);
    assertThat(lines).as("the charge's holder named").anyMatch(line -> line.contains(taken.paymentId())
        && line.contains("already the charge of payment " + holder.paymentId()));
    Map<String, String> rows = new HashMap<>();
    Http.await(poolA.preparedQuery("""
        SELECT p.id, p.status, p.provider_reference, k.state, k.response_status
        FROM idemgate.payments p JOIN idemgate.idempotency_keys k ON k.payment_id = p.id
        WHERE p.merchant_id = $1 AND p.id = ANY($2)""")
        .execute(Tuple.tuple().addString(MERCHANT).addArrayOfString(new String[] {declined.paymentId(),
            newCharge.paymentId(), taken.paymentId()})))
        .forEach(row -> rows.put(row.getString("id"), row.getString("status") + " " + row.getString("provider_reference")
            + " " + row.getString("state") + " " + row.getInteger("response_status")));
    assertThat(rows).containsExactlyInAnyOrderEntriesOf(Map.of(
        declined.paymentId(), "declined ch_" + declined.paymentId() + " COMPLETED 402",
        newCharge.paymentId(), "succeeded ch_" + newCharge.paymentId() + " COMPLETED 201",
        taken.paymentId(), "pending null PENDING 202"));
  }

  @Test
  @DisplayName("a completion group whose charge locks do not fit in what is left of PostgreSQL's lock table (SQLSTATE "
      + "53200, out of shared memory) is written write by write, a lock at a time: every payment is written succeeded, "
      + "none is left 202")
  void aGroupPastTheLockTableIsWrittenWriteByWrite() {
    try (ThrowawayPostgres small = ThrowawayPostgres.startWith(SMALL_LOCK_TABLE)) {
      Migrations.migrate(small.url());
      Pool pool = PgBuilder.pool().with(new PoolOptions().setMaxSize(2))
          .connectingTo(Postgres.connectOptions(small.url())).using(vertx).build();
      Pool others = PgBuilder.pool().with(new PoolOptions().setMaxSize(1))
          .connectingTo(Postgres.connectOptions(small.url())).using(vertx).build();
      try {
        Context context = vertx.getOrCreateContext();
        List<String> groups = Collections.synchronizedList(new ArrayList<>());
        IdempotencyStore store = recordingStore(pool, context, groups);
        List<String> keys = new ArrayList<>();
        for (int i = 0; i < FULL_GROUP; i++) {
          keys.add(Http.newKey());
        }
        List<StoreClaim> claims = onContext(context, () -> claimAll(store, keys));
        leaveRoomForLocks(Http.await(others.getConnection()), 100);
        groups.clear();
        List<Future<Completion.Result>> completions = onContext(context, () -> {
          List<Future<Completion.Result>> all = new ArrayList<>();
          for (int i = 0; i < keys.size(); i++) {
            StoreClaim.Claimed owned = (StoreClaim.Claimed) claims.get(i);
            all.add(store.complete(MERCHANT, new IdempotencyKey(keys.get(i)), owned.epoch(), succeeded(owned)));
          }
          return Future.join(all).transform(done -> Future.succeededFuture(all));
        });

        assertThat(groups.get(0)).as("one statement for the group first").isEqualTo("complete " + FULL_GROUP);
        assertThat(groups).as("then one for each write").hasSize(1 + FULL_GROUP);
        assertThat(completions).as("each completion of a new charge id (statements: %d)", groups.size())
            .allSatisfy(c -> assertThat(c.succeeded() ? c.result() : c.cause()).isEqualTo(Completion.Result.RECORDED));
        assertThat(Http.await(pool.preparedQuery("SELECT count(*) FROM idemgate.payments WHERE status = 'succeeded' "
            + "AND provider_reference = 'ch_' || id AND id = ANY($1)").execute(Tuple.of(claims.stream()
            .map(c -> ((StoreClaim.Claimed) c).paymentId()).toArray(String[]::new)))).iterator().next().getLong(0))
            .as("payments written succeeded").isEqualTo((long) FULL_GROUP);
      } finally {
        Http.await(pool.close());
        Http.await(others.close());
      }
    }
  }

  /**
   * Fills the server's lock table from {@code session}, as other sessions' locks would (other pods'
   * groups after a stall), then frees {@code room} of them: locks of its own until PostgreSQL refuses
   * one with 53200, held for the session (a refused statement does not give back the ones it took).
   * Filled rather than computed: the table takes what shared memory is left over, beyond
   * max_locks_per_transaction x (max_connections + max_prepared_transactions + background processes):
   * 273 locks where that product is 120.
   */
  private static void leaveRoomForLocks(SqlConnection session, int room) {
    for (int from = 1; ; from += 10) {
      try {
        session.preparedQuery("SELECT count(pg_advisory_lock(7, g)) FROM generate_series($1::int, $1::int + 9) g")
            .execute(Tuple.of(from)).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      } catch (ExecutionException refused) {
        assertThat(refused.getCause()).isInstanceOf(PgException.class);
        assertThat(((PgException) refused.getCause()).getSqlState()).as("refused after %d locks", from).isEqualTo("53200");
        assertThat(from).as("locks taken").isGreaterThan(room);
        break;
      } catch (InterruptedException | java.util.concurrent.TimeoutException e) {
        throw new AssertionError(e);
      }
    }
    Http.await(session.preparedQuery("SELECT count(pg_advisory_unlock(7, g)) FROM generate_series(1, $1) g")
        .execute(Tuple.of(room)));
  }

  /** "status provider_reference state response_status asked_again" of each payment, succeeded first. */
  private static List<String> ledgerOf(List<StoreClaim.Claimed> owned) {
    List<String> ledger = new ArrayList<>();
    Http.await(poolA.preparedQuery("""
        SELECT p.status, p.provider_reference, k.state, k.response_status, k.next_inquiry_at IS NOT NULL AS asked_again
        FROM idemgate.payments p JOIN idemgate.idempotency_keys k ON k.payment_id = p.id
        WHERE p.merchant_id = $1 AND p.id = ANY($2) ORDER BY p.status DESC""")
        .execute(Tuple.tuple().addString(MERCHANT)
            .addArrayOfString(owned.stream().map(StoreClaim.Claimed::paymentId).toArray(String[]::new))))
        .forEach(row -> ledger.add(row.getString("status") + " " + row.getString("provider_reference") + " "
            + row.getString("state") + " " + row.getInteger("response_status") + " " + row.getBoolean("asked_again")));
    return ledger;
  }

  private static void lockRecord(SqlConnection session, String key) {
    Http.await(session.preparedQuery("SELECT 1 FROM idemgate.idempotency_keys WHERE merchant_id = $1"
        + " AND idempotency_key = $2 FOR UPDATE").execute(Tuple.of(MERCHANT, key)));
  }

  /** @param groups told "claim N" or "complete N" for every grouped statement, in order */
  private static IdempotencyStore recordingStore(Pool pool, Context context, List<String> groups) {
    return new IdempotencyStore(pool, context, 1, Duration.ofSeconds(5), Duration.ofSeconds(30), "simulator",
        (operation, payments) -> groups.add(operation + " " + payments));
  }

  private static Completion succeeded(StoreClaim.Claimed claimed) {
    return succeeded(claimed, "ch_" + claimed.paymentId());
  }

  private static Completion succeeded(StoreClaim.Claimed claimed, String chargeId) {
    StoredResponse response = new StoredResponse(201, "{}", claimed.paymentId(), Instant.now().plus(Duration.ofHours(1)));
    StoredResponse pending = new StoredResponse(202, "{\"status\":\"pending\"}", claimed.paymentId(), response.expiresAt());
    return new Completion(RecordState.COMPLETED, response, Duration.ofHours(1), "succeeded", "simulator", chargeId, null,
        null, Completion.pending(pending, Duration.ofHours(1), "simulator", Duration.ofSeconds(5)));
  }

  private static Completion declined(StoreClaim.Claimed claimed) {
    StoredResponse response = new StoredResponse(402, "{}", claimed.paymentId(), Instant.now().plus(Duration.ofHours(1)));
    return new Completion(RecordState.COMPLETED, response, Duration.ofHours(1), "declined", "simulator",
        "ch_" + claimed.paymentId(), "card_declined", null, null);
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
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
