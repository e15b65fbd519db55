package dev.idemgate.recovery;

import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static dev.idemgate.support.Waits.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.Completion;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.RecordState;
import dev.idemgate.idempotency.StoreClaim;
import dev.idemgate.idempotency.StoredResponse;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.payment.PaymentService;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.ProxiedPostgres;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** Operator verdicts that meet other verdicts, recovery passes or a client's retry at the same moment. */
class OperatorVerdictRaceIT {
  private static TestGateway gateway;
  private static Http http;
  private static TestDb db;
  /** The gateways' settings: a short lease and provider timeout, so that verdicts' budgets are short. */
  private static final Map<String, String> SETTINGS = Map.of("IDEMGATE_LEASE", "3s", "IDEMGATE_PROVIDER_TIMEOUT", "3s");
  /** The payments the tests made, deleted at the end. */
  private static final List<String> made = new java.util.concurrent.CopyOnWriteArrayList<>();

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(SETTINGS);
    http = new Http();
    db = new TestDb(http.vertx());
  }

  @AfterAll
  static void stop() {
    // Left unsettled, they would be asked about by every recovery pass on this machine for ever.
    db.query("DELETE FROM idemgate.idempotency_keys WHERE payment_id = ANY($1)", (Object) made.toArray(String[]::new));
    db.query("DELETE FROM idemgate.payments WHERE id = ANY($1)", (Object) made.toArray(String[]::new));
    db.query("DELETE FROM idemgate.released_payments WHERE id = ANY($1)", (Object) made.toArray(String[]::new));
    db.close();
    http.close();
    gateway.close();
  }

  /** {@link ForgottenPendingPayments#make}, deleted at the end. */
  private static String forgottenPending(String key, long amount) {
    String paymentId = ForgottenPendingPayments.make(db, http.vertx(), key, amount);
    made.add(paymentId);
    return paymentId;
  }

  private static CompletableFuture<Reply> settleAsync(String paymentId, String verdict) {
    return settleAsync(paymentId, verdict, gateway);
  }

  private static CompletableFuture<Reply> settleAsync(String paymentId, String verdict, TestGateway to) {
    return CompletableFuture.supplyAsync(() -> http.send(HttpMethod.POST, to.managementPort(),
        "/admin/pending/" + paymentId + "/resolve",
        Map.of("Authorization", "Bearer " + TestGateway.ADMIN_TOKEN, "Content-Type", "application/json"),
        Buffer.buffer(verdict)));
  }

  /**
   * Completions (IdempotencyStore's) and releases (RecoveryStore's), which write the ledger, waiting
   * for a lock; known by their openings, as pg_stat_activity keeps only the first 1 kB of a statement.
   */
  private static long ledgerWritesWaiting() {
    return (Long) db.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        + "AND (query LIKE '%FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[]%' "
        + "OR query LIKE '%WITH gone AS (%DELETE FROM idemgate.idempotency_keys%AND epoch = $3 AND payment_id = $4%')");
  }

  @Test
  @DisplayName("two verdicts at once naming one charge id for two payments: one is applied, the other refused (409); "
      + "the ledger never holds one charge as two payments")
  void oneChargeIsOnePaymentUnderConcurrentVerdicts() throws Exception {
    String keyOne = Http.newKey();
    String keyTwo = Http.newKey();
    String one = forgottenPending(keyOne, 1501);
    String two = forgottenPending(keyTwo, 1502);
    String charge = "ch_race_" + keyOne;
    String verdict = "{\"outcome\":\"succeeded\",\"provider_reference\":\"" + charge + "\"}";

    // Both ledger rows are locked (a long transaction, a vacuum, a backup's lock): the verdicts
    // each check the charge id, find it nowhere, and wait to write. Each one's check and write must
    // exclude the other's.
    SqlConnection held = Http.await(db.pool().getConnection());
    CompletableFuture<Reply> first;
    CompletableFuture<Reply> second;
    try {
      Http.await(held.query("BEGIN").execute());
      Http.await(held.preparedQuery("SELECT 1 FROM idemgate.payments WHERE id = ANY($1) FOR UPDATE")
          .execute(Tuple.of(new String[] {one, two})));
      first = settleAsync(one, verdict);
      second = settleAsync(two, verdict);
      eventually(Duration.ofSeconds(15), () -> ledgerWritesWaiting() >= 1 || first.isDone() || second.isDone(),
          "a verdict reaches its ledger write");
      // The other verdict has its own ledger write to reach (or is in the same grouped statement).
      long until = System.nanoTime() + Duration.ofSeconds(1).toNanos();
      while (System.nanoTime() < until && ledgerWritesWaiting() < 2 && !first.isDone() && !second.isDone()) {
        Thread.sleep(100);
      }
    } finally {
      Http.await(held.query("ROLLBACK").execute());
      Http.await(held.close());
    }
    List<Reply> replies = List.of(first.get(), second.get());
    assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE provider_reference = $1", charge))
        .as("ledger rows naming charge %s after verdicts answered %s / %s", charge, replies.get(0).body(),
            replies.get(1).body())
        .isEqualTo(1L);
    assertThat(replies).extracting(Reply::status).containsExactlyInAnyOrder(200, 409);
    Reply refused = replies.get(0).status() == 409 ? replies.get(0) : replies.get(1);
    assertThat(refused.json().getString("detail")).contains("is already the charge of payment");
  }

  @Test
  @DisplayName("a verdict's charge lock (RecoveryStore's LOCK_CHARGE) and a grouped completion's (V11's charge_holders) "
      + "are one lock: a completion of that charge id waits until the verdict's transaction ends, one of another does not")
  void verdictAndCompletionShareTheChargeLock() throws Exception {
    io.vertx.core.Context context = http.vertx().getOrCreateContext();
    IdempotencyStore store = new IdempotencyStore(db.pool(), context, 2, Duration.ofSeconds(5), Duration.ofSeconds(3),
        "simulator");
    IdempotencyKey sameKey = new IdempotencyKey(Http.newKey());
    IdempotencyKey otherKey = new IdempotencyKey(Http.newKey());
    StoreClaim.Claimed same = claimed(store, sameKey);
    StoreClaim.Claimed other = claimed(store, otherKey);
    String charge = "ch_locked_" + sameKey.value();
    SqlConnection verdict = Http.await(db.pool().getConnection());
    try {
      Http.await(verdict.query("BEGIN").execute());
      // The statement an operator's verdict runs first, as it is.
      Http.await(verdict.preparedQuery(RecoveryStore.LOCK_CHARGE).execute(Tuple.of(charge, "30000")));

      assertThat(store.complete(MERCHANT_A, otherKey, other.epoch(), succeeded(other, "ch_free_" + otherKey.value()))
          .toCompletionStage().toCompletableFuture().get(3, TimeUnit.SECONDS))
          .as("a completion of another charge id, written while the verdict's transaction is open")
          .isEqualTo(Completion.Result.RECORDED);
      CompletableFuture<Completion.Result> locked =
          store.complete(MERCHANT_A, sameKey, same.epoch(), succeeded(same, charge)).toCompletionStage().toCompletableFuture();
      eventually(Duration.ofSeconds(5), () -> locked.isDone() || (Long) db.scalar("SELECT count(*) FROM pg_stat_activity "
          + "WHERE wait_event = 'advisory' AND query LIKE '%idemgate.charge_holders(%'") > 0,
          "the completion waits for an advisory lock");
      assertThat(locked.isDone()).as("the completion of charge %s finished while the verdict held its lock: %s", charge,
          locked.isDone() ? locked.getNow(null) : null).isFalse();
      Http.await(verdict.query("ROLLBACK").execute());
      assertThat(locked.get(3, TimeUnit.SECONDS)).as("written once the verdict's transaction ended")
          .isEqualTo(Completion.Result.RECORDED);
    } finally {
      Http.await(verdict.close());
    }
  }

  /** A claim of {@code key} for MERCHANT_A, PROCESSING, its payment id kept for the clean-up. */
  private static StoreClaim.Claimed claimed(IdempotencyStore store, IdempotencyKey key) {
    JsonObject body = Http.payment(1506, "tok_visa");
    ClaimRequest claim = new ClaimRequest(MERCHANT_A, key, PaymentService.fingerprint(body),
        PaymentJson.newPaymentId(Instant.now()), 1506, "EUR", body.getString("merchant_reference"), null, null);
    made.add(claim.paymentId());
    return (StoreClaim.Claimed) Http.await(store.claim(claim));
  }

  /** The acquirer's 201 with charge id {@code charge}, and its pending alternative should another payment hold it. */
  private static Completion succeeded(StoreClaim.Claimed claimed, String charge) {
    StoredResponse response = new StoredResponse(201, "{}", claimed.paymentId(), Instant.now().plus(Duration.ofHours(1)));
    StoredResponse pending = new StoredResponse(202, "{\"status\":\"pending\"}", claimed.paymentId(), response.expiresAt());
    return new Completion(RecordState.COMPLETED, response, Duration.ofHours(1), "succeeded", "simulator", charge, null,
        null, Completion.pending(pending, Duration.ofHours(1), "simulator", Duration.ofSeconds(5)));
  }

  @Test
  @DisplayName("a not_charged verdict whose write PostgreSQL confirms too late (behind a lock) but then commits, "
      + "freeing the key, is not answered 'store unavailable, retry later': the operator is told it may have been "
      + "recorded, and to look first")
  void lateWriteIsNotToldAsNothingDone() throws Exception {
    String key = Http.newKey();
    String paymentId = forgottenPending(key, 1503);
    SqlConnection held = Http.await(db.pool().getConnection());
    CompletableFuture<Reply> verdict;
    try {
      Http.await(held.query("BEGIN").execute());
      Http.await(held.preparedQuery("SELECT 1 FROM idemgate.payments WHERE id = $1 FOR UPDATE").execute(Tuple.of(paymentId)));
      verdict = settleAsync(paymentId, "{\"outcome\":\"not_charged\"}");
      eventually(Duration.ofSeconds(15), () -> ledgerWritesWaiting() >= 1, "the verdict reaches its ledger write");
      // The gateway stops waiting for the write after store_timeout (5 s); PostgreSQL ends the
      // statement only a second after that. The lock goes in between: the write commits.
      Thread.sleep(5_400);
    } finally {
      Http.await(held.query("ROLLBACK").execute());
      Http.await(held.close());
    }
    Reply answered = verdict.get();
    eventually(Duration.ofSeconds(5), () -> db.scalar(
        "SELECT reason FROM idemgate.released_payments WHERE id = $1", paymentId) != null,
        "the release the gateway stopped waiting for lands");
    assertThat(db.scalar("SELECT count(*) FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        MERCHANT_A, key)).as("the key is free").isEqualTo(0L);
    assertToldItMayHaveLanded(answered);
  }

  @Test
  @DisplayName("a succeeded verdict whose COMMIT reaches PostgreSQL and commits, but whose connection is lost before "
      + "the answer comes back, is not answered 'store unavailable, retry later': the operator is told it may have "
      + "been recorded, and to look first")
  void lostCommitIsNotToldAsNothingDone() throws Exception {
    String key = Http.newKey();
    String paymentId = forgottenPending(key, 1504);
    String charge = "ch_commit_" + key;
    try (ProxiedPostgres postgres = ProxiedPostgres.start();
         TestGateway proxied = throughProxy(postgres)) {
      // A verdict naming a charge id is written in a transaction (under the charge id's lock); the
      // gateway's other statements are single autocommit ones, so its COMMIT is the only one sent.
      postgres.proxy().loseAnswerAfter("COMMIT", 500);
      Reply answered = http.send(HttpMethod.POST, proxied.managementPort(), "/admin/pending/" + paymentId + "/resolve",
          Map.of("Authorization", "Bearer " + TestGateway.ADMIN_TOKEN, "Content-Type", "application/json"),
          Buffer.buffer("{\"outcome\":\"succeeded\",\"provider_reference\":\"" + charge + "\"}"));

      assertThat(db.scalar("SELECT status FROM idemgate.payments WHERE id = $1 AND provider_reference = $2", paymentId,
          charge)).as("the verdict committed").isEqualTo("succeeded");
      assertToldItMayHaveLanded(answered);
    }
  }

  @Test
  @DisplayName("a verdict whose connection falls silent after its write, inside the transaction under the charge id's "
      + "lock (a paused gateway, a partition that drops packets), does not leave the payment's record locked: "
      + "PostgreSQL ends the idle transaction, the write is undone, and retries of the key are not held up")
  void silentConnectionDoesNotKeepTheRecordLocked() throws Exception {
    String key = Http.newKey();
    String paymentId = forgottenPending(key, 1505);
    String charge = "ch_silent_" + key;
    try (ProxiedPostgres postgres = ProxiedPostgres.start();
         TestGateway proxied = throughProxy(postgres)) {
      // The completion's stored answer names the charge id: only the verdict's write sends it. It
      // reaches PostgreSQL and runs; then its connection forwards nothing either way for a minute.
      postgres.proxy().loseAnswerAfter("\"provider_reference\":\"" + charge, 60_000);
      settleAsync(paymentId,
          "{\"outcome\":\"succeeded\",\"provider_reference\":\"" + charge + "\"}", proxied);
      eventually(Duration.ofSeconds(15), () -> !lockable(key), "the verdict's write holds the record");

      eventually(Duration.ofSeconds(15), () -> lockable(key), "the record is no longer locked by the silent verdict");
      assertThat(db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
          MERCHANT_A, key)).as("the verdict's write undone").isEqualTo("PENDING");
    }
  }

  /** A gateway like the class's, reaching PostgreSQL through {@code postgres}'s fault proxy. */
  private static TestGateway throughProxy(ProxiedPostgres postgres) {
    Map<String, String> settings = new java.util.HashMap<>(SETTINGS);
    settings.put("IDEMGATE_PG_URL", postgres.url());
    return TestGateway.start(settings);
  }

  /** The answer to a verdict that was applied though PostgreSQL did not confirm it: 503, "look first". */
  private static void assertToldItMayHaveLanded(Reply answered) {
    assertThat(answered.status()).as(answered.body()).isEqualTo(503);
    assertThat(answered.json().getString("detail")).as("what the operator is told of a verdict that was applied")
        .contains("may or may not have been recorded").doesNotContain("retry later");
  }

  /** Whether the key's record can be locked at once (nobody holds it). */
  private static boolean lockable(String key) {
    try {
      db.query("SELECT 1 FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2 FOR UPDATE NOWAIT",
          MERCHANT_A, key);
      return true;
    } catch (AssertionError locked) { // how TestDb reports the statement's failure
      return false;
    }
  }
}
