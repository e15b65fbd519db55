package dev.idemgate.reconciliation;

import static dev.idemgate.reconciliation.ReconciliationIT.HEADER;
import static dev.idemgate.reconciliation.ReconciliationIT.row;
import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Discrepancies a finance team acts on that the report used to miss (session 27's review). Each runs
 * the real command against the real PostgreSQL.
 */
class ReconciliationMatchingIT {
  @TempDir
  Path dir;

  private JsonObject reconcile(String name, String csv, String merchantPrefix) throws Exception {
    return run(name, csv, merchantPrefix).report();
  }

  private LedgerFixture.Reconciled run(String name, String csv, String merchantPrefix) throws Exception {
    return run(name, csv, merchantPrefix, "2d");
  }

  private LedgerFixture.Reconciled run(String name, String csv, String merchantPrefix, String lag) throws Exception {
    return LedgerFixture.reconcile(dir, name, csv, merchantPrefix, lag);
  }

  private static Map<String, JsonObject> bySettlement(JsonObject json) {
    return LedgerFixture.bySettlement(json);
  }

  /**
   * A file spanning three days around the payments under test: a row settled at {@code base} and one
   * three days later, each matched by reference, so that a payment charged in the first day is
   * expected (its whole 2-day lag is covered).
   */
  private static String frame(LedgerFixture ledger, Instant base) throws Exception {
    String p = ledger.prefix;
    String m1 = ledger.merchant("m1");
    ledger.payment("m1", 1_111, "EUR", "succeeded", p + "ch_first", base.minus(Duration.ofHours(1)));
    ledger.payment("m1", 2_222, "EUR", "succeeded", p + "ch_last", base.plus(Duration.ofDays(3)).minus(Duration.ofHours(1)));
    return row("s_first", p + "ch_first", null, m1, 1_111, "EUR", "settled", base)
        + row("s_last", p + "ch_last", null, m1, 2_222, "EUR", "settled", base.plus(Duration.ofDays(3)));
  }

  @Test
  @DisplayName("a settlement row whose provider key and reference name another charge is not paired by probability "
      + "with a ledger payment that has its own, different key and reference: an orphan and a missing settlement")
  void contradictoryKeysAreNoProbableMatch() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(6));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER).append(frame(ledger, base));
      // The ledger's payment: charged, succeeded, never settled by the acquirer.
      String unsettled = ledger.payment("m1", 5_000, "EUR", "succeeded", p + "ch_ledger_only", base.plus(Duration.ofHours(1)));
      // The acquirer's charge the ledger never recorded (another provider key, another reference):
      // same merchant, same price (a fixed-price product), same day.
      String foreignKey = LedgerFixture.providerKey("pay_" + p + "never_in_ledger");
      csv.append(row("s_orphan", p + "ch_provider_only", foreignKey, m1, 5_000, "EUR", "settled",
          base.plus(Duration.ofHours(3))));

      JsonObject json = reconcile("contradictory.csv", csv.toString(), p);

      JsonObject byCategory = json.getJsonObject("summary").getJsonObject("by_category");
      assertThat(byCategory.getLong("ORPHAN_AT_PROVIDER"))
          .as("the acquirer's charge with a key and reference the ledger lacks; report: %s", json.getJsonObject("summary").encode())
          .isEqualTo(1);
      assertThat(byCategory.getLong("MISSING_IN_SETTLEMENT")).as("the ledger payment %s never settled", unsettled).isEqualTo(1);
    }
  }

  @Test
  @DisplayName("a reference unique in the window but of another merchant is no match for a row naming its merchant "
      + "(simulator references restart): an orphan for the row's merchant, a missing settlement for the other's")
  void aLoneReferenceOfAnotherMerchantIsNoMatch() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(6));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER).append(frame(ledger, base));
      String m2Payment = ledger.payment("m2", 5_000, "EUR", "succeeded", p + "ch_sim_7", base.plus(Duration.ofHours(1)));
      csv.append(row("s_m1", p + "ch_sim_7", null, m1, 5_000, "EUR", "settled", base.plus(Duration.ofHours(3))));

      JsonObject json = reconcile("other-merchant.csv", csv.toString(), p);

      JsonObject orphan = bySettlement(json).get("s_m1");
      assertThat(orphan).as("m1's settlement was matched to m2's payment %s: %s", m2Payment,
          json.getJsonObject("summary").encode()).isNotNull();
      assertThat(orphan.getString("category")).isEqualTo("ORPHAN_AT_PROVIDER");
      assertThat(json.getJsonObject("summary").getJsonObject("by_category").getLong("MISSING_IN_SETTLEMENT")).isEqualTo(1);
    }
  }

  @Test
  @DisplayName("a settled row of a payment charged long before the window is that payment's settlement (its reference "
      + "names it), flagged as settled outside the lag, not an orphan to refund; its refund beside it is a STATUS_MISMATCH")
  void aSettlementOfAnOldPaymentIsMatchedAndFlagged() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(6));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER).append(frame(ledger, base));
      // Charged 40 days before the file and settled in an earlier one; this file refunds it and settles it again.
      String old = ledger.payment("m1", 2_700, "EUR", "succeeded", p + "ch_old", base.minus(Duration.ofDays(40)));
      csv.append(row("s_again", p + "ch_old", null, m1, 2_700, "EUR", "settled", base.plus(Duration.ofDays(1))));
      csv.append(row("rf_old", p + "ch_old", null, m1, 2_700, "EUR", "refunded", base.plus(Duration.ofDays(2))));

      JsonObject json = reconcile("settled-again.csv", csv.toString(), p);

      Map<String, JsonObject> found = bySettlement(json);
      assertThat(found.get("rf_old").getString("category")).isEqualTo("STATUS_MISMATCH");
      assertThat(found.get("rf_old").getString("payment_id")).isEqualTo(old);
      assertThat(found.get("s_again")).as(json.getJsonArray("discrepancies").encode()).isNull();
      JsonObject outside = json.getJsonObject("summary").getJsonObject("settled_outside_lag");
      assertThat(outside.getLong("rows")).isEqualTo(1);
      assertThat(outside.getJsonArray("first").getJsonObject(0).getString("settlement_id")).isEqualTo("s_again");
      assertThat(outside.getJsonArray("first").getJsonObject(0).getString("payment_id")).isEqualTo(old);
    }
  }

  @Test
  @DisplayName("settlement rows without reference or key, each of one merchant's payments of distinct, close amounts "
      + "(5 rows, 5 payments, 25 pairs), are matched to them, not reported as orphans to refund")
  void referenceLessRowsOfCloseAmountsAreMatched() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant charged = Instant.now().truncatedTo(ChronoUnit.DAYS).minus(Duration.ofDays(6)).plus(Duration.ofSeconds(11 * 3600 + 65));
      String m2 = ledger.merchant("m2");
      StringBuilder csv = new StringBuilder(HEADER);
      long[] amounts = {1_925, 1_962, 2_036, 2_073, 2_110};
      for (int i = 0; i < amounts.length; i++) {
        ledger.payment("m2", amounts[i], "EUR", "succeeded", null, charged.plusMillis(500L * i));
        csv.append(row("M" + (i + 1), null, null, m2, amounts[i], "EUR", "settled",
            charged.minusSeconds(65).plus(Duration.ofMinutes(4))));
      }
      ledger.payment("m2", 1_999, "EUR", "declined", null, charged.plusSeconds(3));

      JsonObject json = reconcile("m2.csv", csv.toString(), ledger.prefix);

      JsonObject summary = json.getJsonObject("summary");
      assertThat(summary.getJsonObject("rows").getLong("matched"))
          .as("%s %s", summary.encode(), json.getJsonArray("discrepancies").encode()).isEqualTo(5);
      assertThat(summary.getLong("total")).isZero();
    }
  }

  @Test
  @DisplayName("a row without reference or key whose merchant, amount and currency only one unmatched payment shares "
      + "is matched to it, however many other payments of the merchant are in the window")
  void aSoleExactAmountAmongABusyMerchantsPaymentsIsMatched() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant settled = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(6));
      String demo = ledger.merchant("demo");
      // The merchant's other payments of the two days before, settled in other files.
      ledger.connection.setAutoCommit(false);
      for (int i = 0; i < 146; i++) {
        ledger.payment("demo", 3_000 + 53L * i, "EUR", "succeeded", null, settled.minus(Duration.ofMinutes(19L * i + 7)));
      }
      ledger.connection.commit();
      ledger.connection.setAutoCommit(true);
      String paid = ledger.payment("demo", 1_444, "EUR", "succeeded", null, settled.minus(Duration.ofMinutes(4)));

      JsonObject json = reconcile("busy.csv", HEADER + row("s_1444", null, null, demo, 1_444, "EUR", "settled", settled),
          ledger.prefix);

      assertThat(count(json, "ORPHAN_AT_PROVIDER")).as("%s %s", json.getJsonObject("summary").encode(),
          json.getJsonArray("discrepancies").encode()).isZero();
      JsonObject matches = json.getJsonObject("summary").getJsonObject("matches");
      assertThat(matches.fieldNames()).containsExactly("sole_exact_amount");
      assertThat(json.getJsonArray("probable_matches").getJsonObject(0).getString("payment_id")).isEqualTo(paid);
    }
  }

  @Test
  @DisplayName("a row that two payments of its merchant could each be (same amount, currency and day) is left for a "
      + "person: an orphan to review naming the candidate, never advised to be refunded, with evidence that says so")
  void anOrphanWithCandidatesIsForReviewNotRefund() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant settled = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(6));
      String m1 = ledger.merchant("m1");
      String first = ledger.payment("m1", 2_500, "EUR", "succeeded", null, settled.minus(Duration.ofHours(3)));
      String second = ledger.payment("m1", 2_500, "EUR", "succeeded", null, settled.minus(Duration.ofHours(2)));

      JsonObject json = reconcile("twins.csv", HEADER + row("s_twin", null, null, m1, 2_500, "EUR", "settled", settled),
          ledger.prefix);

      JsonObject orphan = bySettlement(json).get("s_twin");
      assertThat(orphan).as(json.getJsonArray("discrepancies").encode()).isNotNull();
      assertThat(orphan.getString("category")).isEqualTo("ORPHAN_AT_PROVIDER");
      assertThat(orphan.getString("remediation")).as(orphan.encode()).isEqualTo("REVIEW_CANDIDATE");
      JsonObject evidence = orphan.getJsonObject("evidence");
      assertThat(evidence.getString("reason")).doesNotContain("no ledger payment close enough").contains("2 ledger payments");
      assertThat(evidence.getString("candidate_payment_id")).isIn(first, second);
    }
  }

  @Test
  @DisplayName("--settlement-lag 0s (or any lag shorter than the setting's) only makes payments expected sooner: the "
      + "ledger is still searched back the setting's lag, so a row without reference or key settled 30 hours after "
      + "its charge, before the file's other rows, is matched as without the option, not an orphan to refund")
  void aShortLagDoesNotNarrowTheLookback() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(6));
      String m1 = ledger.merchant("m1");
      String csv = HEADER + frame(ledger, base) + row("s_bare", null, null, m1, 3_333, "EUR", "settled", base);
      String paid = ledger.payment("m1", 3_333, "EUR", "succeeded", null, base.minus(Duration.ofHours(30)));

      for (String lag : List.of("2d", "0s")) {
        JsonObject json = run("lag-" + lag + ".csv", csv, ledger.prefix, lag).report();
        JsonObject summary = json.getJsonObject("summary");
        assertThat(summary.getLong("total")).as("%s: %s %s", lag, summary.encode(), json.getJsonArray("discrepancies").encode())
            .isZero();
        assertThat(summary.getJsonObject("rows").getLong("matched")).as(lag).isEqualTo(3);
        assertThat(json.getJsonArray("probable_matches").getJsonObject(0).getString("payment_id")).as(lag).isEqualTo(paid);
        assertThat(summary.getJsonObject("settled_outside_lag").getLong("rows")).as(lag).isZero();
        assertThat(summary.getJsonArray("warnings")).as(lag).isEmpty();
      }
    }
  }

  @Test
  @DisplayName("rows settled later than the settlement lag after their charges (a long weekend), whose reference or "
      + "provider key names one payment, are matched to it and flagged as settled outside the lag, not orphans; a "
      + "reference two payments of the merchant carry is said to be ambiguous, not missing")
  void lateSettlementsAreMatchedByTheirReference() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant friday = Instant.now().truncatedTo(ChronoUnit.DAYS).minus(Duration.ofDays(10)).plus(Duration.ofHours(10));
      Instant monday = friday.plus(Duration.ofDays(3));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER);
      for (int i = 0; i < 3; i++) {
        ledger.payment("m1", 1_000 + i, "EUR", "succeeded", p + "ch_sim_" + i, friday.plus(Duration.ofMinutes(i)));
        csv.append(row("s_" + i, p + "ch_sim_" + i, null, m1, 1_000 + i, "EUR", "settled", monday.plus(Duration.ofMinutes(i))));
      }
      String byKey = ledger.payment("m1", 1_100, "EUR", "succeeded", null, friday.plus(Duration.ofMinutes(5)));
      csv.append(row("s_key", null, LedgerFixture.providerKey(byKey), m1, 1_100, "EUR", "settled", monday.plus(Duration.ofMinutes(5))));
      // The simulator restarted: two of m1's payments carry ch_twice.
      ledger.payment("m1", 1_200, "EUR", "succeeded", p + "ch_twice", friday.plus(Duration.ofMinutes(6)));
      ledger.payment("m1", 1_300, "EUR", "succeeded", p + "ch_twice", friday.minus(Duration.ofDays(20)));
      csv.append(row("s_twice", p + "ch_twice", null, m1, 1_250, "EUR", "settled", monday.plus(Duration.ofMinutes(6))));

      LedgerFixture.Reconciled run = run("weekend.csv", csv.toString(), p);
      JsonObject json = run.report();

      JsonObject summary = json.getJsonObject("summary");
      assertThat(summary.getJsonObject("rows").getLong("matched")).as("%s %s", summary.encode(),
          json.getJsonArray("discrepancies").encode()).isEqualTo(4);
      assertThat(summary.getLong("total")).isEqualTo(1);
      JsonObject twice = bySettlement(json).get("s_twice");
      assertThat(twice.getString("category")).isEqualTo("ORPHAN_AT_PROVIDER");
      assertThat(twice.getJsonObject("evidence").getString("reason")).contains("2 ledger payments of this merchant");
      assertThat(twice.getString("remediation")).isEqualTo("REVIEW_CANDIDATE");
      assertThat(summary.getJsonObject("settled_outside_lag").getLong("rows")).isEqualTo(4);
      assertThat(run.err()).contains("warning").contains("settlement lag");
    }
  }

  @Test
  @DisplayName("a file whose settled_at has the wrong year is matched by its references, netting included (settled "
      + "twice, refunded once is nothing), with a warning that its dates are far from the charges, and no orphan")
  void aFileOfTheWrongYearIsMatchedAndWarnedAbout() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS).minus(Duration.ofDays(10));
      Instant lastYear = day.minus(Duration.ofDays(365));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER);
      for (int i = 0; i < 8; i++) {
        ledger.payment("m1", 1_000 + i, "EUR", "succeeded", p + "ch_" + i, day.plus(Duration.ofHours(i)));
        csv.append(row("s_" + i, p + "ch_" + i, null, m1, 1_000 + i, "EUR", "settled", lastYear.plus(Duration.ofHours(i + 2))));
      }
      ledger.payment("m1", 5_000, "EUR", "succeeded", p + "ch_dup", day.plus(Duration.ofHours(9)));
      csv.append(row("s_dup1", p + "ch_dup", null, m1, 5_000, "EUR", "settled", lastYear.plus(Duration.ofHours(10))));
      csv.append(row("s_dup2", p + "ch_dup", null, m1, 5_000, "EUR", "settled", lastYear.plus(Duration.ofHours(11))));
      csv.append(row("rf_dup", p + "ch_dup", null, m1, 5_000, "EUR", "refunded", lastYear.plus(Duration.ofHours(12))));

      LedgerFixture.Reconciled run = run("wrong-year.csv", csv.toString(), p);
      JsonObject json = run.report();

      assertThat(json.getJsonObject("summary").getLong("total"))
          .as("%s %s", json.getJsonObject("summary").encode(), json.getJsonArray("discrepancies").encode()).isZero();
      assertThat(json.getJsonObject("summary").getJsonArray("warnings").encode()).contains("settlement lag");
      assertThat(run.err()).contains("warning");
    }
  }

  /** A row whose settled_at is written as the file gives it (a bare date, say). */
  private static String rowAt(String id, String ref, String merchant, long amount, String settledAt) {
    return String.join(",", id, ref == null ? "" : ref, "", merchant, Long.toString(amount), "EUR", "settled", settledAt) + "\n";
  }

  private static long count(JsonObject json, String category) {
    return json.getJsonObject("summary").getJsonObject("by_category").getLong(category);
  }

  @Test
  @DisplayName("a file of bare dates covers the whole of its last day: a payment the lag before it ends is expected, "
      + "and one charged late on a day settles that day")
  void bareDatesCoverTheirWholeDay() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS).minus(Duration.ofDays(20));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER);
      for (int i = 0; i < 7; i++) {
        Instant settled = day.plus(Duration.ofDays(i));
        ledger.payment("m1", 1_000 + i, "EUR", "succeeded", p + "ch_d" + i, settled.plus(Duration.ofHours(1)));
        csv.append(rowAt("s_d" + i, p + "ch_d" + i, m1, 1_000 + i, settled.toString().substring(0, 10)));
      }
      // Charged on the morning of the fifth day, never settled: its 2-day lag ends within the file's last day.
      String unsettled = ledger.payment("m1", 3_000, "EUR", "succeeded", p + "ch_unsettled",
          day.plus(Duration.ofDays(4)).plus(Duration.ofHours(10)));
      // Charged at 22:00 and settled that day, in a row without a reference: only its amount, merchant and day match it.
      ledger.payment("m1", 4_321, "EUR", "succeeded", p + "ch_late", day.plus(Duration.ofDays(3)).plus(Duration.ofHours(22)));
      csv.append(rowAt("s_late", null, m1, 4_321, day.plus(Duration.ofDays(3)).toString().substring(0, 10)));

      JsonObject json = reconcile("bare-dates.csv", csv.toString(), p);

      JsonObject summary = json.getJsonObject("summary");
      assertThat(summary.getJsonObject("missing_window").getString("created_to"))
          .isEqualTo(day.plus(Duration.ofDays(5)).toString());
      assertThat(summary.getLong("total")).as(json.getJsonArray("discrepancies").encode()).isEqualTo(1);
      assertThat(json.getJsonArray("discrepancies").getJsonObject(0).getString("payment_id")).isEqualTo(unsettled);
      assertThat(count(json, "MISSING_IN_SETTLEMENT")).isEqualTo(1);
    }
  }

  @Test
  @DisplayName("a settled row without our provider key, of a charge whose outcome the ledger does not know yet (a claim "
      + "in flight, a pending payment), is matched to it and reported with its stuck record, never as an orphan to refund")
  void aSettlementOfAnUnsettledChargeIsNoOrphan() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(6));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER).append(frame(ledger, base));
      // Claimed, sent, and never answered: no ledger row, so no reference either. Claimed for an
      // acquirer no gateway serves, so that the recovery of one running on this database leaves it be.
      String acquirer = "http " + p + "acquirer";
      String inFlight = "pay_" + p + "inflight";
      ledger.key("m1", inFlight, "PROCESSING", 4_400, base.plus(Duration.ofHours(1)), base.plus(Duration.ofHours(1)).plusSeconds(30),
          acquirer);
      csv.append(row("s_claim", p + "ch_inflight", null, m1, 4_400, "EUR", "settled", base.plus(Duration.ofHours(5))));
      // Timed out: a pending payment, no reference, recovery still asking.
      String pending = ledger.payment("m1", 6_600, "EUR", "pending", null, base.plus(Duration.ofHours(2)));
      ledger.key("m1", pending, "PENDING", 6_600, base.plus(Duration.ofHours(2)), base.plus(Duration.ofHours(2)).plusSeconds(30),
          acquirer);
      csv.append(row("s_pending", p + "ch_unknown", null, m1, 6_600, "EUR", "settled", base.plus(Duration.ofHours(6))));

      JsonObject json = reconcile("unsettled.csv", csv.toString(), p);

      assertThat(count(json, "ORPHAN_AT_PROVIDER")).as(json.getJsonArray("discrepancies").encode()).isZero();
      assertThat(count(json, "STUCK_IN_LEDGER")).isEqualTo(2);
      Map<String, JsonObject> found = bySettlement(json);
      assertThat(found.get("s_claim").getString("payment_id")).isEqualTo(inFlight);
      assertThat(found.get("s_pending").getString("payment_id")).isEqualTo(pending);
      for (JsonObject stuck : found.values()) {
        assertThat(stuck.getString("category")).isEqualTo("STUCK_IN_LEDGER");
        assertThat(stuck.getJsonObject("evidence").getBoolean("provider_settled")).isTrue();
      }
    }
  }

  @Test
  @DisplayName("a row some weeks from the others is no stray date in a small file (a merchant's month) nor in a file "
      + "whose rows nearly all share one date: it is reconciled and stretches the period the file covers (a wrong year "
      + "is still a stray)")
  void rowsAFewWeeksApartAreNoStrays() throws Exception {
    Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS).minus(Duration.ofDays(40));
    try (LedgerFixture ledger = new LedgerFixture()) {
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder month = new StringBuilder(HEADER);
      for (Duration at : List.of(Duration.ZERO, Duration.ofHours(5), Duration.ofDays(1), Duration.ofDays(2), Duration.ofDays(20))) {
        Instant settled = day.plus(at);
        ledger.payment("m1", 1_000 + at.toHours(), "EUR", "succeeded", p + "ch_" + at.toHours(), settled.minus(Duration.ofHours(1)));
        month.append(row("s_" + at.toHours(), p + "ch_" + at.toHours(), null, m1, 1_000 + at.toHours(), "EUR", "settled", settled));
      }
      String unsettled = ledger.payment("m1", 3_000, "EUR", "succeeded", p + "ch_unsettled", day.plus(Duration.ofDays(10)));

      JsonObject json = reconcile("small-month.csv", month.toString(), p);

      assertThat(json.getJsonObject("summary").getJsonObject("rows").getLong("malformed"))
          .as(json.getJsonArray("malformed_rows").encode()).isZero();
      assertThat(count(json, "MISSING_IN_SETTLEMENT")).isEqualTo(1);
      assertThat(json.getJsonArray("discrepancies").getJsonObject(0).getString("payment_id")).isEqualTo(unsettled);
    }
    try (LedgerFixture ledger = new LedgerFixture()) {
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder daily = new StringBuilder(HEADER);
      String date = day.plus(Duration.ofDays(30)).toString().substring(0, 10);
      for (int i = 0; i < 6; i++) {
        ledger.payment("m1", 1_000 + i, "EUR", "succeeded", p + "ch_" + i, day.plus(Duration.ofDays(29)).plus(Duration.ofHours(i)));
        daily.append(rowAt("s_" + i, p + "ch_" + i, m1, 1_000 + i, date));
      }
      // Settled nine days before the others, of a charge the ledger lacks.
      daily.append(rowAt("s_orphan", p + "ch_orphan", m1, 5_000, day.plus(Duration.ofDays(21)).toString().substring(0, 10)));
      // A wrong year is still taken for one (line 9).
      daily.append(rowAt("s_year", p + "ch_5", m1, 1_005, day.plus(Duration.ofDays(30 - 365)).toString().substring(0, 10)));

      JsonObject json = reconcile("one-date.csv", daily.toString(), p);

      assertThat(json.getJsonArray("malformed_rows").stream().map(o -> ((JsonObject) o).getLong("line")))
          .as(json.getJsonArray("malformed_rows").encode()).containsExactly(9L);
      assertThat(bySettlement(json).get("s_orphan").getString("category")).isEqualTo("ORPHAN_AT_PROVIDER");
    }
  }

  @Test
  @DisplayName("a reference written exactly as one payment's is matched to it, although another payment's reference "
      + "is the same without punctuation (inv-1-12 and inv-11-2)")
  void anExactReferenceWinsOverANormalisedTwin() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(6));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER).append(frame(ledger, base));
      // Invoice 1's twelfth attempt and invoice 11's second, both for the same fixed price.
      ledger.payment("m1", 2_500, "EUR", "succeeded", p + "inv-1-12", base.plus(Duration.ofHours(1)));
      ledger.payment("m1", 2_500, "EUR", "succeeded", p + "inv-11-2", base.plus(Duration.ofHours(2)));
      csv.append(row("s_inv_1", p + "inv-1-12", null, m1, 2_500, "EUR", "settled", base.plus(Duration.ofHours(5))));
      csv.append(row("s_inv_11", p + "inv-11-2", null, m1, 2_500, "EUR", "settled", base.plus(Duration.ofHours(6))));

      JsonObject json = reconcile("twins.csv", csv.toString(), p);

      assertThat(json.getJsonObject("summary").getLong("total")).as(json.getJsonArray("discrepancies").encode()).isZero();
      assertThat(json.getJsonObject("summary").getJsonObject("matches").getJsonObject("provider_reference").getLong("rows"))
          .isEqualTo(4);
    }
  }
}
