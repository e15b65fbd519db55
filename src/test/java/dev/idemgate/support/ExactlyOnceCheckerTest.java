package dev.idemgate.support;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.support.ExactlyOnceChecker.Charge;
import dev.idemgate.support.ExactlyOnceChecker.KeyRow;
import dev.idemgate.support.ExactlyOnceChecker.Ledger;
import dev.idemgate.support.ExactlyOnceChecker.Op;
import dev.idemgate.support.ExactlyOnceChecker.Outcome;
import dev.idemgate.support.ExactlyOnceChecker.PaymentRow;
import dev.idemgate.support.ExactlyOnceChecker.Property;
import dev.idemgate.support.ExactlyOnceChecker.Report;
import io.vertx.core.MultiMap;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The checker on hand-made histories: a clean run passes, and a run that breaks each property is caught
 * by that property, so none of the checks can pass vacuously.
 */
@DisplayName("ExactlyOnceChecker")
class ExactlyOnceCheckerTest {
  private static final String M = "merchant_x";
  private static final JsonObject BODY = new JsonObject().put("amount", 1000).put("currency", "EUR").put("source", "tok_visa");

  private final List<Op> history = new ArrayList<>();
  private final List<Charge> charges = new ArrayList<>();
  private final List<PaymentRow> payments = new ArrayList<>();
  private final List<KeyRow> keys = new ArrayList<>();

  private static String pk(String key) {
    return ProviderKeys.of(M, key);
  }

  private static Op op(String key, int status, String responseBody) {
    return Op.of(M, key, BODY, new Http.Reply(status, MultiMap.caseInsensitiveMultiMap(), responseBody));
  }

  private static String payment(String id, String status) {
    return new JsonObject().put("id", id).put("status", status).put("amount", 1000).encode();
  }

  /** A clean run: k1 succeeded and replayed, k2 declined, k3 refused by the provider (502), k4 pending then succeeded. */
  @BeforeEach
  void cleanRun() {
    history.add(op("k1", 201, payment("pay_1", "succeeded")));
    history.add(op("k1", 201, payment("pay_1", "succeeded")));
    history.add(op("k2", 402, payment("pay_2", "declined")));
    history.add(op("k3", 502, "{\"code\":\"provider_unavailable\"}"));
    history.add(op("k4", 202, payment("pay_4", "pending")));
    history.add(Op.noResponse(M, "k4", BODY));
    history.add(op("k4", 201, payment("pay_4", "succeeded")));

    charges.add(new Charge(pk("k1"), "ch_1", "succeeded", 1000, "EUR", "pay_1"));
    charges.add(new Charge(pk("k2"), "ch_2", "declined", 1000, "EUR", "pay_2"));
    charges.add(new Charge(pk("k4"), "ch_4", "succeeded", 1000, "EUR", "pay_4"));

    payments.add(new PaymentRow("pay_1", M, pk("k1"), 1000, "EUR", "succeeded"));
    payments.add(new PaymentRow("pay_2", M, pk("k2"), 1000, "EUR", "declined"));
    payments.add(new PaymentRow("pay_4", M, pk("k4"), 1000, "EUR", "succeeded"));
    keys.add(new KeyRow(M, "k1", "COMPLETED", "pay_1", pk("k1")));
    keys.add(new KeyRow(M, "k2", "COMPLETED", "pay_2", pk("k2")));
    keys.add(new KeyRow(M, "k4", "COMPLETED", "pay_4", pk("k4")));
  }

  private Report check() {
    return ExactlyOnceChecker.check(history, charges, new Ledger(payments, keys));
  }

  @Test
  @DisplayName("a clean run passes, with its counts")
  void cleanRunPasses() {
    Report report = check();
    report.assertValid();
    assertThat(report.requests()).isEqualTo(7);
    assertThat(report.ok()).isEqualTo(4);
    assertThat(report.failed()).isEqualTo(1);
    assertThat(report.unknown()).isEqualTo(2);
    assertThat(report.charges()).isEqualTo(3);
    assertThat(report.chargedAmount()).isEqualTo(2000).isEqualTo(report.ledgerAmount());
    assertThat(report.toString()).matches(" *7 +4 +1 +2 \\| +3 +0 +0 +0 +0 +0 \\| +2000 +2000");
    assertThat(Report.header()).hasSameSizeAs(report.toString());
  }

  @Test
  @DisplayName("a provider key charged twice is a double charge")
  void doubleCharge() {
    charges.add(new Charge(pk("k1"), "ch_1b", "succeeded", 1000, "EUR"));
    Report report = check();
    assertThat(report.doubleCharges()).isEqualTo(1);
    assertThat(report.violations()).containsKey(Property.NO_DOUBLE_CHARGE);
    assertThatThrownBy(report::assertValid).isInstanceOf(AssertionError.class).hasMessageContaining("charged 2 times");
  }

  @Test
  @DisplayName("a declined retry after a success is not a double charge")
  void declineIsNoDoubleCharge() {
    charges.add(new Charge(pk("k1"), "ch_1b", "declined", 1000, "EUR"));
    assertThat(check().doubleCharges()).isZero();
  }

  @Test
  @DisplayName("a 201 without a payments row is lost")
  void lostWithoutRow() {
    payments.removeIf(p -> p.id().equals("pay_1"));
    Report report = check();
    assertThat(report.lost()).isEqualTo(1);
    assertThat(report.violations()).containsKey(Property.NO_LOST_PAYMENT);
  }

  @Test
  @DisplayName("a 201 whose ledger row is not succeeded is lost")
  void lostWithWrongStatus() {
    payments.replaceAll(p -> p.id().equals("pay_4") ? new PaymentRow("pay_4", M, pk("k4"), 1000, "EUR", "pending") : p);
    assertThat(check().lost()).isEqualTo(1);
  }

  @Test
  @DisplayName("a 201 the acquirer never charged is lost")
  void lostWithoutCharge() {
    charges.removeIf(c -> c.id().equals("ch_1"));
    Report report = check();
    assertThat(report.lost()).isEqualTo(1);
    assertThat(report.violations()).containsKeys(Property.NO_LOST_PAYMENT, Property.AMOUNTS_RECONCILE);
  }

  @Test
  @DisplayName("a 402 without a declined row is lost")
  void lostDecline() {
    payments.removeIf(p -> p.id().equals("pay_2"));
    assertThat(check().lost()).isEqualTo(1);
  }

  @Test
  @DisplayName("a charge under a released key (the client got 502) is an orphan")
  void orphan() {
    charges.add(new Charge(pk("k3"), "ch_3", "succeeded", 1000, "EUR"));
    Report report = check();
    assertThat(report.orphans()).isEqualTo(1);
    assertThat(report.violations()).containsKey(Property.NO_ORPHAN_CHARGE);
  }

  @Test
  @DisplayName("a charge whose key is still claimed is not an orphan")
  void claimedIsNoOrphan() {
    charges.add(new Charge(pk("k3"), "ch_3", "succeeded", 1000, "EUR"));
    keys.add(new KeyRow(M, "k3", "PENDING", "pay_3", pk("k3")));
    Report report = check();
    assertThat(report.orphans()).isZero();
    assertThat(report.stuck()).isEqualTo(1);
  }

  @Test
  @DisplayName("two different final bodies for one key are a mismatched replay")
  void mismatchedBody() {
    history.add(op("k1", 201, payment("pay_1", "succeeded") + " "));
    Report report = check();
    assertThat(report.mismatchedReplays()).isEqualTo(1);
    assertThat(report.violations()).containsKey(Property.IDENTICAL_REPLAYS);
  }

  @Test
  @DisplayName("a pending payment released uncharged, then superseded by a new payment under the same key, is fine")
  void releasedPendingSuperseded() {
    history.add(0, op("k4", 202, payment("pay_released", "pending")));
    check().assertValid();
  }

  @Test
  @DisplayName("a pending payment that was charged, then superseded by another charged payment, is a mismatched replay and a double charge")
  void chargedPendingSuperseded() {
    history.add(0, op("k4", 202, payment("pay_old", "pending")));
    charges.add(new Charge(ProviderKeys.reused(M, "k4", "pay_old"), "ch_old", "succeeded", 1000, "EUR", "pay_old"));
    Report report = check();
    assertThat(report.mismatchedReplays()).isEqualTo(1);
    assertThat(report.doubleCharges()).isEqualTo(1);
    assertThat(report.violations()).containsKeys(Property.IDENTICAL_REPLAYS, Property.NO_DOUBLE_CHARGE);
    assertThat(report.violations().get(Property.NO_DOUBLE_CHARGE)).anyMatch(v -> v.contains(M + "/k4 charged 2 times"));
  }

  @Test
  @DisplayName("chargesOf keeps the charges of this history and drops another run's")
  void chargesOfThisHistory() {
    charges.add(new Charge("pk-of-another-run", "ch_x", "succeeded", 5, "EUR", "pay_x"));
    List<Charge> mine = ExactlyOnceChecker.chargesOf(charges, history, new Ledger(payments, keys));
    assertThat(mine).extracting(Charge::id).containsExactly("ch_1", "ch_2", "ch_4");
  }

  @Test
  @DisplayName("charged and ledger amounts that differ do not reconcile")
  void amountsDiffer() {
    payments.replaceAll(p -> p.id().equals("pay_1") ? new PaymentRow("pay_1", M, pk("k1"), 999, "EUR", "succeeded") : p);
    Report report = check();
    assertThat(report.violations()).containsOnlyKeys(Property.AMOUNTS_RECONCILE);
    assertThat(report.ledgerAmount()).isEqualTo(1999);
  }

  @Test
  @DisplayName("a succeeded ledger row the acquirer never charged does not reconcile")
  void succeededWithoutCharge() {
    payments.add(new PaymentRow("pay_5", M, pk("k5"), 1000, "EUR", "succeeded"));
    charges.add(new Charge(pk("k5"), "ch_5", "declined", 1000, "EUR"));
    keys.add(new KeyRow(M, "k5", "COMPLETED", "pay_5", pk("k5")));
    Report report = check();
    assertThat(report.violations()).containsOnlyKeys(Property.AMOUNTS_RECONCILE);
    assertThat(report.violations().get(Property.AMOUNTS_RECONCILE)).anyMatch(v -> v.contains("never charged"));
  }

  @Test
  @DisplayName("records left PROCESSING or PENDING, or payments left pending, are stuck; the property can be waived")
  void stuck() {
    keys.add(new KeyRow(M, "k6", "PROCESSING", "pay_6", pk("k6")));
    payments.add(new PaymentRow("pay_7", M, pk("k7"), 1000, "EUR", "pending"));
    Report report = check();
    assertThat(report.stuck()).isEqualTo(2);
    assertThatThrownBy(report::assertValid).isInstanceOf(AssertionError.class);
    report.assertValidExcept(Property.NOTHING_STUCK);
  }

  @Test
  @DisplayName("outcomes: 201/402 ok; 4xx, 502, 503 failed; 202, other 5xx and no response unknown")
  void outcomes() {
    assertThat(Outcome.of(201)).isEqualTo(Outcome.OK);
    assertThat(Outcome.of(402)).isEqualTo(Outcome.OK);
    assertThat(Outcome.of(409)).isEqualTo(Outcome.FAILED);
    assertThat(Outcome.of(422)).isEqualTo(Outcome.FAILED);
    assertThat(Outcome.of(502)).isEqualTo(Outcome.FAILED);
    assertThat(Outcome.of(503)).isEqualTo(Outcome.FAILED);
    assertThat(Outcome.of(202)).isEqualTo(Outcome.UNKNOWN);
    assertThat(Outcome.of(500)).isEqualTo(Outcome.UNKNOWN);
    assertThat(Outcome.of(0)).isEqualTo(Outcome.UNKNOWN);
  }

  @Test
  @DisplayName("the acquirer's GET /charges answer is read with each charge's provider key")
  void readsAcquirerLog() {
    JsonObject log = new JsonObject().put("requests", 1).put("charges", new JsonArray().add(new JsonObject()
        .put("id", "ch_9").put("idempotency_key", "pk9").put("status", "succeeded").put("amount", 5).put("currency", "EUR")));
    assertThat(ExactlyOnceChecker.charges(log)).containsExactly(new Charge("pk9", "ch_9", "succeeded", 5, "EUR", null));
  }
}
