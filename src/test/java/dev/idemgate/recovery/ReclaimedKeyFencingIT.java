package dev.idemgate.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.Completion;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.RecordState;
import dev.idemgate.idempotency.StoreClaim;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.storage.Migrations;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A key whose record was released (recovery found that the provider never saw the charge) is
 * claimed anew at epoch 1 again, so an epoch alone does not tell an old owner from the new one.
 * Whoever slept through that (a gateway paused past its lease, a recovery pass paused mid-way) must
 * not delete or touch the new claim: the new request would then charge with no record left to
 * complete, its 201 would miss the ledger, and the next retry would claim and charge again.
 */
class ReclaimedKeyFencingIT {
  private static final String MERCHANT = "reclaimed-fencing";

  private static Http http;
  private static TestDb db;
  private static IdempotencyStore store;
  private static RecoveryStore recovery;

  @BeforeAll
  static void start() {
    Migrations.migrate(TestGateway.pgUrl());
    http = new Http();
    db = new TestDb(http.vertx());
    store = new IdempotencyStore(db.pool(), http.vertx().getOrCreateContext(), 1, Duration.ofSeconds(5),
        Duration.ofSeconds(30), "simulator");
    recovery = new RecoveryStore(db.pool(), Duration.ofSeconds(5), List.of("simulator"), Duration.ofDays(1), List.of("simulator"));
  }

  @AfterAll
  static void stop() {
    db.query("DELETE FROM idemgate.idempotency_keys WHERE merchant_id = $1", MERCHANT);
    db.query("DELETE FROM idemgate.released_payments WHERE merchant_id = $1", MERCHANT);
    db.close();
    http.close();
  }

  @Test
  @DisplayName("a request that slept through its lease and the key's release cannot release the claim of the request that took the key after it, though both hold epoch 1")
  void staleOwnerCannotReleaseTheNewClaim() {
    String key = Http.newKey();
    StoreClaim.Claimed old = claim(key);
    StoreClaim.Claimed current = releasedAndClaimedAgain(key);
    assertThat(current.epoch()).as("the premise: a key claimed anew starts again at the same epoch").isEqualTo(old.epoch());

    assertThat(Http.await(store.release(MERCHANT, new IdempotencyKey(key), old.epoch(), old.paymentId())))
        .isEqualTo(Completion.Result.FENCED);
    assertThat(record(key)).isEqualTo("PROCESSING " + current.paymentId());

    assertThat(Http.await(store.release(MERCHANT, new IdempotencyKey(key), current.epoch(), current.paymentId())))
        .as("the owner itself still releases it").isEqualTo(Completion.Result.RECORDED);
    assertThat(record(key)).isNull();
  }

  @Test
  @DisplayName("a recovery pass that slept cannot reschedule or release a newer pending record with the same epoch")
  void staleRecoveryCannotTouchTheNewRecord() {
    String key = Http.newKey();
    StoreClaim.Claimed old = claim(key);
    StoreClaim.Claimed current = releasedAndClaimedAgain(key);
    db.query("UPDATE idemgate.idempotency_keys SET state = 'PENDING', next_inquiry_at = now() + interval '1 hour' "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT, key);
    OffsetDateTime nextInquiry = nextInquiry(key);

    Http.await(recovery.reschedule(due(key, old), Duration.ZERO));
    assertThat(nextInquiry(key)).as("not rescheduled by the old pass").isEqualTo(nextInquiry);
    assertThat(Http.await(recovery.releaseUnseen(due(key, old), ReleaseReason.PROVIDER_NEVER_SAW_IT))).isFalse();
    assertThat(record(key)).isEqualTo("PENDING " + current.paymentId());
    assertThat(releasedAs(current.paymentId())).as("a fenced release keeps no payment as released").isNull();

    assertThat(Http.await(recovery.releaseUnseen(due(key, current), ReleaseReason.PROVIDER_NEVER_SAW_IT)))
        .as("its own pass still releases it").isTrue();
    assertThat(record(key)).isNull();
    assertThat(releasedAs(current.paymentId())).isEqualTo("provider_never_saw_it");
  }

  @Test
  @DisplayName("a final answer that lands after recovery took the record over is written over recovery's claim, once, and never over a newer claim of the key")
  void finalAnswerAfterTakeover() {
    String key = Http.newKey();
    StoreClaim.Claimed owner = claim(key);
    // Recovery's takeover (TAKE_DUE): the epoch moves on.
    db.query("UPDATE idemgate.idempotency_keys SET epoch = epoch + 1 WHERE merchant_id = $1 AND idempotency_key = $2",
        MERCHANT, key);
    Completion succeeded = succeeded(owner);
    assertThat(Http.await(store.complete(MERCHANT, new IdempotencyKey(key), owner.epoch(), succeeded)))
        .as("the owner's own write is fenced").isEqualTo(Completion.Result.FENCED);
    assertThat(Http.await(store.completeTakenOver(MERCHANT, new IdempotencyKey(key), succeeded)))
        .isEqualTo(Completion.Result.RECORDED);
    assertThat(record(key)).isEqualTo("COMPLETED " + owner.paymentId());
    assertThat(db.scalar("SELECT status || ' ' || provider_reference FROM idemgate.payments WHERE id = $1", owner.paymentId()))
        .isEqualTo("succeeded ch_taken_over_" + owner.paymentId());
    assertThat(Http.await(store.completeTakenOver(MERCHANT, new IdempotencyKey(key), succeeded)))
        .as("a final record is not written again").isEqualTo(Completion.Result.FENCED);

    String reclaimedKey = Http.newKey();
    StoreClaim.Claimed old = claim(reclaimedKey);
    StoreClaim.Claimed current = releasedAndClaimedAgain(reclaimedKey);
    assertThat(Http.await(store.completeTakenOver(MERCHANT, new IdempotencyKey(reclaimedKey), succeeded(old))))
        .isEqualTo(Completion.Result.FENCED);
    assertThat(record(reclaimedKey)).isEqualTo("PROCESSING " + current.paymentId());
  }

  private static Completion succeeded(StoreClaim.Claimed claim) {
    String body = "{\"id\":\"" + claim.paymentId() + "\",\"status\":\"succeeded\"}";
    Instant expiresAt = Instant.now().plus(Duration.ofHours(1));
    Completion ifChargeTaken = Completion.pending(new dev.idemgate.idempotency.StoredResponse(202, "{}", claim.paymentId(),
        expiresAt), Duration.ofHours(1), "simulator", Duration.ofSeconds(5));
    return new Completion(RecordState.COMPLETED, new dev.idemgate.idempotency.StoredResponse(201, body, claim.paymentId(),
        expiresAt), Duration.ofHours(1), "succeeded", "simulator", "ch_taken_over_" + claim.paymentId(), null, null,
        ifChargeTaken);
  }

  private static StoreClaim.Claimed claim(String key) {
    StoreClaim claim = Http.await(store.claim(new ClaimRequest(MERCHANT, new IdempotencyKey(key), "fp-" + key,
        PaymentJson.newPaymentId(Instant.now()), 1_000, "EUR", null, null, null)));
    assertThat(claim).isInstanceOf(StoreClaim.Claimed.class);
    return (StoreClaim.Claimed) claim;
  }

  /**
   * The key released as recovery releases a charge the provider never saw (no record of it is
   * left), then claimed by a new request: that request's claim.
   */
  private static StoreClaim.Claimed releasedAndClaimedAgain(String key) {
    db.query("DELETE FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT, key);
    return claim(key);
  }

  private static DueRecord due(String key, StoreClaim.Claimed claim) {
    return new DueRecord(MERCHANT, new IdempotencyKey(key), "fp-" + key, RecordState.PENDING, claim.epoch(),
        claim.paymentId(), claim.providerKey(), 1_000, "EUR", null, claim.createdAt(), 1, claim.createdAt(), System.nanoTime());
  }

  /** "STATE payment_id" of the key's record, or null when there is none. */
  private static String record(String key) {
    var rows = db.query("SELECT state || ' ' || payment_id AS r FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT, key);
    return rows.size() == 0 ? null : rows.iterator().next().getString("r");
  }

  /** The reason a payment was kept as released for, or null when it was not. */
  private static Object releasedAs(String paymentId) {
    return db.scalar("SELECT reason FROM idemgate.released_payments WHERE id = $1", paymentId);
  }

  private static OffsetDateTime nextInquiry(String key) {
    return (OffsetDateTime) db.scalar("SELECT next_inquiry_at FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT, key);
  }
}
