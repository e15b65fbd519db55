package dev.idemgate.reconciliation;

import static dev.idemgate.reconciliation.ReconciliationIT.HEADER;
import static dev.idemgate.reconciliation.ReconciliationIT.row;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.idemgate.support.TestGateway;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Settlements remembered across runs (reconciliation_settlements): a payment an earlier file settled
 * and a later file settles again under another settlement_id is a duplicate charge; the same
 * settlement seen again is not. Each runs the real command against the real PostgreSQL.
 */
class ReconciliationHistoryIT {
  @TempDir
  Path dir;

  private JsonObject reconcile(String name, String csv, String merchantPrefix) throws Exception {
    return LedgerFixture.reconcile(dir, name, csv, merchantPrefix, "2d").report();
  }

  private static Map<String, JsonObject> bySettlement(JsonObject json) {
    return LedgerFixture.bySettlement(json);
  }

  private static long count(JsonObject json, String category) {
    return json.getJsonObject("summary").getJsonObject("by_category").getLong(category);
  }

  @Test
  @DisplayName("a payment file A settled and file B settles again under another settlement_id is a DUPLICATE_CHARGE "
      + "to refund naming A's run and file, also when B is reconciled again; B repeating A's settlement_id, or refunding "
      + "its second settlement, is not")
  void aSecondSettlementInALaterFileIsADuplicateCharge() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant a = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(45));
      Instant b = a.plus(Duration.ofDays(30));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      String twice = ledger.payment("m1", 4_100, "EUR", "succeeded", p + "ch_twice", a.minus(Duration.ofHours(2)));
      ledger.payment("m1", 4_200, "EUR", "succeeded", p + "ch_repeated", a.minus(Duration.ofHours(2)));
      ledger.payment("m1", 4_300, "EUR", "succeeded", p + "ch_refunded", a.minus(Duration.ofHours(2)));
      StringBuilder fileA = new StringBuilder(HEADER)
          .append(row("sa_twice", p + "ch_twice", null, m1, 4_100, "EUR", "settled", a))
          .append(row("sa_repeated", p + "ch_repeated", null, m1, 4_200, "EUR", "settled", a.plus(Duration.ofHours(1))))
          .append(row("sa_refunded", p + "ch_refunded", null, m1, 4_300, "EUR", "settled", a.plus(Duration.ofHours(2))));
      // A month later: the first payment settled again, under another id; the second's settlement
      // repeated as it was (a monthly file that lists the daily files' rows); the third settled
      // again and refunded in the same file (netted: charged once).
      StringBuilder fileB = new StringBuilder(HEADER)
          .append(row("sb_twice", p + "ch_twice", null, m1, 4_100, "EUR", "settled", b))
          .append(row("sa_repeated", p + "ch_repeated", null, m1, 4_200, "EUR", "settled", a.plus(Duration.ofHours(1))))
          .append(row("sb_refunded", p + "ch_refunded", null, m1, 4_300, "EUR", "settled", b.plus(Duration.ofHours(1))))
          .append(row("rb_refunded", p + "ch_refunded", null, m1, 4_300, "EUR", "refunded", b.plus(Duration.ofHours(3))));

      JsonObject runA = reconcile("a.csv", fileA.toString(), p);
      assertThat(runA.getJsonObject("summary").getLong("total")).as(runA.encode()).isZero();
      JsonObject runB = reconcile("b.csv", fileB.toString(), p);

      Map<String, JsonObject> found = bySettlement(runB);
      assertThat(found.keySet()).as("discrepancies of B: %s", runB.getJsonArray("discrepancies").encode())
          .containsExactly("sb_twice");
      JsonObject duplicate = found.get("sb_twice");
      assertThat(duplicate.getString("category")).isEqualTo("DUPLICATE_CHARGE");
      assertThat(duplicate.getString("remediation")).isEqualTo("REFUND_DUPLICATE");
      assertThat(duplicate.getString("payment_id")).isEqualTo(twice);
      JsonObject evidence = duplicate.getJsonObject("evidence");
      assertThat(evidence.getString("earlier_run_id")).isEqualTo(runA.getJsonObject("run").getString("id"));
      assertThat(evidence.getString("earlier_settlement_file"))
          .isEqualTo(runA.getJsonObject("run").getString("settlement_file"));
      assertThat(evidence.getString("first_settlement_id")).isEqualTo("sa_twice");
      assertThat(evidence.getJsonObject("earlier_settlement").getString("settlement_id")).isEqualTo("sa_twice");
      assertThat(evidence.containsKey("review_reason")).isFalse();
      assertThat(runB.getJsonObject("summary").getJsonObject("rows").getLong("netted")).isEqualTo(2);

      // B reconciled again finds the same duplicate, with the same earlier settlement: A's row is still
      // the payment's first, although B's own rows are now recorded too.
      JsonObject runBAgain = reconcile("b.csv", fileB.toString(), p);
      Map<String, JsonObject> again = bySettlement(runBAgain);
      assertThat(again.keySet()).as(runBAgain.getJsonArray("discrepancies").encode()).containsExactly("sb_twice");
      assertThat(again.get("sb_twice").getJsonObject("evidence").getString("earlier_run_id"))
          .isEqualTo(runA.getJsonObject("run").getString("id"));
    }
  }

  @Test
  @DisplayName("the same file reconciled twice reports nothing new: its own rows recorded by the first run are the same "
      + "settlements, not duplicates across files")
  void theSameFileTwiceIsNoDuplicate() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant a = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(20));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER);
      for (int i = 0; i < 5; i++) {
        ledger.payment("m1", 1_000 + i, "EUR", "succeeded", p + "ch_" + i, a.minus(Duration.ofHours(3)));
        csv.append(row("s_" + i, p + "ch_" + i, null, m1, 1_000 + i, "EUR", "settled", a.plus(Duration.ofHours(i))));
      }
      // One duplicate within the file, reported by both runs alike.
      csv.append(row("s_0b", p + "ch_0", null, m1, 1_000, "EUR", "settled", a.plus(Duration.ofHours(6))));

      JsonObject first = reconcile("same.csv", csv.toString(), p);
      JsonObject second = reconcile("same.csv", csv.toString(), p);

      assertThat(count(first, "DUPLICATE_CHARGE")).as(first.getJsonArray("discrepancies").encode()).isEqualTo(1);
      assertThat(second.getJsonObject("summary").getJsonObject("by_category"))
          .as(second.getJsonArray("discrepancies").encode())
          .isEqualTo(first.getJsonObject("summary").getJsonObject("by_category"));
      JsonObject again = bySettlement(second).get("s_0b");
      assertThat(again.getString("remediation")).isEqualTo("REFUND_DUPLICATE");
      assertThat(again.getJsonObject("evidence").containsKey("earlier_run_id")).isFalse();
      try (PreparedStatement s = ledger.connection.prepareStatement(
          "SELECT count(*) FROM idemgate.reconciliation_settlements WHERE run_id = ?")) {
        s.setString(1, second.getJsonObject("run").getString("id"));
        try (ResultSet rs = s.executeQuery()) {
          rs.next();
          assertThat(rs.getLong(1)).as("the second run's matched rows, recorded").isEqualTo(6);
        }
      }
    }
  }

  @Test
  @DisplayName("a second settlement across files whose evidence is not certain is a DUPLICATE_CHARGE to review, never "
      + "to refund: the same amount and settled_at under another settlement_id, or a refund of it in the earlier file")
  void doubtfulSecondSettlementsAreForReview() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant a = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(45));
      Instant b = a.plus(Duration.ofDays(30));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      ledger.payment("m1", 5_100, "EUR", "succeeded", p + "ch_renumbered", a.minus(Duration.ofHours(2)));
      ledger.payment("m1", 5_200, "EUR", "succeeded", p + "ch_reversed", a.minus(Duration.ofHours(2)));
      StringBuilder fileA = new StringBuilder(HEADER)
          .append(row("sa_renumbered", p + "ch_renumbered", null, m1, 5_100, "EUR", "settled", a))
          .append(row("sa_reversed", p + "ch_reversed", null, m1, 5_200, "EUR", "settled", a.plus(Duration.ofHours(1))))
          .append(row("ra_reversed", p + "ch_reversed", null, m1, 5_200, "EUR", "chargeback", a.plus(Duration.ofHours(5))));
      // B lists A's first settlement again under a new id (same amount, same settled_at), and
      // settles the charged-back payment again (the merchant won the dispute? or charged again?).
      StringBuilder fileB = new StringBuilder(HEADER)
          .append(row("sb_renumbered", p + "ch_renumbered", null, m1, 5_100, "EUR", "settled", a))
          .append(row("sb_reversed", p + "ch_reversed", null, m1, 5_200, "EUR", "settled", b));

      reconcile("a.csv", fileA.toString(), p);
      JsonObject runB = reconcile("b.csv", fileB.toString(), p);

      Map<String, JsonObject> found = bySettlement(runB);
      assertThat(found.keySet()).as(runB.getJsonArray("discrepancies").encode())
          .containsExactlyInAnyOrder("sb_renumbered", "sb_reversed");
      for (JsonObject d : found.values()) {
        assertThat(d.getString("category")).isEqualTo("DUPLICATE_CHARGE");
        assertThat(d.getString("remediation")).as(d.encode()).isEqualTo("REVIEW_DUPLICATE");
      }
      assertThat(found.get("sb_renumbered").getJsonObject("evidence").getString("review_reason")).contains("renumbered");
      assertThat(found.get("sb_reversed").getJsonObject("evidence").getString("review_reason")).contains("charged back");
      assertThat(found.get("sb_reversed").getJsonObject("evidence").getLong("earlier_reversals")).isEqualTo(1);
    }
  }

  @Test
  @DisplayName("a refund or chargeback in a later file nets a second settlement an earlier file had and nothing netted: "
      + "no STATUS_MISMATCH for it; a refund of a payment settled once, one beyond the extra settlements, one of "
      + "another amount, one after a duplicate already netted, and one of a payment whose second settlement may be its "
      + "first renumbered (same amount and settled_at) are still STATUS_MISMATCH")
  void aReversalInALaterFileNetsAnEarlierFilesSecondSettlement() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant a = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(60));
      Instant b = a.plus(Duration.ofDays(20));
      Instant later = b.plus(Duration.ofDays(20));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      List<String> names = List.of("refunded", "once", "netted", "twice", "partial", "here", "renumbered");
      for (String name : names) {
        ledger.payment("m1", 6_000, "EUR", "succeeded", p + "ch_" + name, a.minus(Duration.ofHours(2)));
      }
      StringBuilder fileA = new StringBuilder(HEADER);
      StringBuilder fileB = new StringBuilder(HEADER);
      for (String name : names) {
        fileA.append(row("sa_" + name, p + "ch_" + name, null, m1, 6_000, "EUR", "settled", a));
        if (!name.equals("once")) {
          // "renumbered": B lists A's settlement again under a new id, on the same settled_at.
          fileB.append(row("sb_" + name, p + "ch_" + name, null, m1, 6_000, "EUR", "settled",
              name.equals("renumbered") ? a : b));
        }
      }
      // B's extra settlement of "netted" is refunded in B itself: nothing is left for a later refund to net.
      fileB.append(row("rb_netted", p + "ch_netted", null, m1, 6_000, "EUR", "refunded", b.plus(Duration.ofHours(1))));
      StringBuilder fileC = new StringBuilder(HEADER)
          .append(row("rc_refunded", p + "ch_refunded", null, m1, 6_000, "EUR", "refunded", later))
          .append(row("rc_once", p + "ch_once", null, m1, 6_000, "EUR", "refunded", later))
          .append(row("rc_netted", p + "ch_netted", null, m1, 6_000, "EUR", "refunded", later))
          .append(row("rc_twice1", p + "ch_twice", null, m1, 6_000, "EUR", "chargeback", later))
          .append(row("rc_twice2", p + "ch_twice", null, m1, 6_000, "EUR", "refunded", later.plus(Duration.ofHours(1))))
          .append(row("rc_partial", p + "ch_partial", null, m1, 2_500, "EUR", "refunded", later))
          .append(row("rc_renumbered", p + "ch_renumbered", null, m1, 6_000, "EUR", "refunded", later))
          // Settled a third time and refunded once in C: the refund nets C's own extra settlement,
          // and B's stays as B reported it.
          .append(row("sc_here", p + "ch_here", null, m1, 6_000, "EUR", "settled", later))
          .append(row("rc_here", p + "ch_here", null, m1, 6_000, "EUR", "refunded", later.plus(Duration.ofHours(1))));

      reconcile("a.csv", fileA.toString(), p);
      JsonObject runB = reconcile("b.csv", fileB.toString(), p);
      assertThat(bySettlement(runB).keySet()).as(runB.getJsonArray("discrepancies").encode())
          .containsExactlyInAnyOrder("sb_refunded", "sb_twice", "sb_partial", "sb_here", "sb_renumbered");
      assertThat(bySettlement(runB).get("sb_renumbered").getString("remediation")).isEqualTo("REVIEW_DUPLICATE");
      JsonObject runC = reconcile("c.csv", fileC.toString(), p);

      Map<String, JsonObject> found = bySettlement(runC);
      assertThat(found.keySet()).as(runC.getJsonArray("discrepancies").encode())
          .containsExactlyInAnyOrder("rc_once", "rc_netted", "rc_twice2", "rc_partial", "rc_renumbered");
      for (JsonObject d : found.values()) {
        assertThat(d.getString("category")).as(d.encode()).isEqualTo("STATUS_MISMATCH");
      }
      JsonObject rows = runC.getJsonObject("summary").getJsonObject("rows");
      assertThat(rows.getLong("netted_earlier")).as(rows.encode()).isEqualTo(2);
      assertThat(rows.getLong("netted")).as(rows.encode()).isEqualTo(4);
    }
  }

  @Test
  @DisplayName("with run_retention set, a completed run deletes the runs that started longer ago, with the settlements "
      + "they recorded, passing over one under way until a later run; the command says how many; without it none goes")
  void runsOlderThanTheRetentionAreDeletedAfterARun() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture();
        Connection holder = Jdbc.connect(TestGateway.pgUrl())) {
      Instant a = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(45));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      ledger.payment("m1", 4_500, "EUR", "succeeded", p + "ch_old", a.minus(Duration.ofHours(2)));
      ledger.payment("m1", 4_600, "EUR", "succeeded", p + "ch_busy", a.minus(Duration.ofHours(2)));
      String fileA = HEADER + row("sa_old", p + "ch_old", null, m1, 4_500, "EUR", "settled", a);
      String fileB = HEADER + row("sb_busy", p + "ch_busy", null, m1, 4_600, "EUR", "settled", a);
      List<String> runs = runsStartedLongAgo(holder, p, fileA, fileB, fileA);
      String runA = runs.get(0);
      String runB = runs.get(1);
      String runC = runs.get(2);

      reconcile("again.csv", fileA, p);
      assertThat(runsKept(holder, runA, runB, runC)).as("runs kept with run_retention 0s (the default)")
          .containsExactly(runA, runB, runC);

      // Run B is under way, as far as a deletion can tell: its row is held.
      holder.setAutoCommit(false);
      try (PreparedStatement s = holder.prepareStatement(
          "SELECT 1 FROM idemgate.reconciliation_runs WHERE id = ? FOR UPDATE")) {
        s.setString(1, runB);
        s.executeQuery().close();
      }
      Path settings = Files.writeString(dir.resolve("retention.yaml"), "run_retention: 36500d\n");
      String said = reconcileWith(settings, "c.csv", fileA, p);
      assertThat(said).contains("idemgate: deleted 2 reconciliation runs that started more than run_retention (36500d) "
          + "ago, with their discrepancies and recorded settlements");
      holder.commit();
      holder.setAutoCommit(true);
      assertThat(runsKept(holder, runA, runB, runC)).as("runs kept: the one under way").containsExactly(runB);
      try (PreparedStatement s = holder.prepareStatement(
          "SELECT count(*) FROM idemgate.reconciliation_settlements WHERE run_id = ?")) {
        s.setString(1, runA);
        try (ResultSet rs = s.executeQuery()) {
          rs.next();
          assertThat(rs.getLong(1)).as("settlements run A recorded").isZero();
        }
      }

      assertThat(reconcileWith(settings, "d.csv", fileB, p)).contains("idemgate: deleted 1 reconciliation run ");
      assertThat(runsKept(holder, runA, runB, runC)).as("runs kept once B was no longer held").isEmpty();
    }
  }

  @Test
  @DisplayName("deleting old runs goes one run per transaction, oldest first: when a row of the second is held past the "
      + "wait, the first stays deleted, the others are kept for the next run, and the outcome says both; none goes while "
      + "another run holds the settlement history; the run named as the one that has just finished is never deleted")
  void oldRunsDeletedBeforeAFailureStayDeleted() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture();
        Connection holder = Jdbc.connect(TestGateway.pgUrl());
        Connection deleter = Jdbc.connect(TestGateway.pgUrl())) {
      Instant a = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(45));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      ledger.payment("m1", 4_700, "EUR", "succeeded", p + "ch_kept", a.minus(Duration.ofHours(2)));
      String file = HEADER + row("sk_kept", p + "ch_kept", null, m1, 4_700, "EUR", "settled", a);
      List<String> runs = runsStartedLongAgo(holder, p, file, file, file);
      String runA = runs.get(0);
      String runB = runs.get(1);
      String runC = runs.get(2);

      // Another run's tail holds the settlement history: nothing is deleted.
      holder.setAutoCommit(false);
      LedgerFixture.holdTheSettlementHistory(holder);
      Reconciler.OldRuns none = Reconciler.deleteRunsOlderThan(deleter, Duration.ofDays(36_500), Duration.ofSeconds(1), null);
      holder.rollback();
      assertThat(none.describe()).isEqualTo("runs older than run_retention (36500d) were not deleted; the next run tries "
          + "again: another transaction held the settlement history for 1 s");
      assertThat(runsKept(holder, runA, runB, runC)).as("runs kept while the history was held").containsExactly(runA, runB, runC);

      // B's run row is free (it is no run under way), but the settlement it recorded is held, as an
      // operator's transaction would hold a row of it: its cascade waits for that row.
      try (PreparedStatement s = holder.prepareStatement(
          "SELECT 1 FROM idemgate.reconciliation_settlements WHERE run_id = ? FOR UPDATE")) {
        s.setString(1, runB);
        try (ResultSet rs = s.executeQuery()) {
          assertThat(rs.next()).as("a settlement recorded by run B").isTrue();
        }
      }
      Reconciler.OldRuns cut = Reconciler.deleteRunsOlderThan(deleter, Duration.ofDays(36_500), Duration.ofSeconds(1), null);
      holder.rollback();
      holder.setAutoCommit(true);
      assertThat(cut.deleted()).isEqualTo(1);
      assertThat(cut.describe()).isEqualTo("deleted 1 reconciliation run that started more than run_retention (36500d) "
          + "ago; the others were not; the next run tries again: another transaction held a row of a run to delete for 1 s");
      assertThat(runsKept(holder, runA, runB, runC)).as("runs kept after the failure").containsExactly(runB, runC);
      assertThat(deleter.getAutoCommit()).as("the connection is left in autocommit").isTrue();

      // The run that has just finished (Reconciler.run names its own) is kept, however long ago it started:
      // here C, as a run that took longer than the retention.
      Reconciler.OldRuns rest = Reconciler.deleteRunsOlderThan(deleter, Duration.ofDays(36_500), Duration.ofSeconds(1), runC);
      assertThat(rest.deleted()).isEqualTo(1);
      assertThat(rest.failure()).isNull();
      assertThat(runsKept(holder, runA, runB, runC)).as("runs kept once B's row was free").containsExactly(runC);
      assertThat(Reconciler.deleteRunsOlderThan(deleter, Duration.ofDays(36_500), Duration.ofSeconds(1), null).deleted())
          .isEqualTo(1);
      assertThat(runsKept(holder, runA, runB, runC)).as("runs kept by a deletion after another run").isEmpty();
    }
  }

  /**
   * Reconciles each file in turn, then dates the runs back to just over the longest retention, the
   * first the oldest, a day apart: no other run in a shared database is that old. Leaves {@code c}
   * in autocommit.
   */
  private List<String> runsStartedLongAgo(Connection c, String merchantPrefix, String... csvs) throws Exception {
    List<String> runs = new ArrayList<>();
    for (String csv : csvs) {
      runs.add(reconcile("run" + runs.size() + ".csv", csv, merchantPrefix).getJsonObject("run").getString("id"));
    }
    c.setAutoCommit(true);
    for (int i = 0; i < runs.size(); i++) {
      try (PreparedStatement s = c.prepareStatement(
          "UPDATE idemgate.reconciliation_runs SET started_at = now() - make_interval(days => ?) WHERE id = ?")) {
        s.setInt(1, 36_500 + runs.size() - i);
        s.setString(2, runs.get(i));
        assertThat(s.executeUpdate()).isEqualTo(1);
      }
    }
    return runs;
  }

  /** Reconciles {@code csv} with the reconciliation settings in {@code settings}; what the command said on standard error. */
  private String reconcileWith(Path settings, String name, String csv, String merchantPrefix) throws Exception {
    Path file = Files.writeString(dir.resolve(name), csv);
    LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix",
        merchantPrefix, "--reconciliation-config", settings.toString(), "--out", dir.resolve(name + ".json").toString());
    assertThat(cli.status()).as(cli.err()).isZero();
    return cli.err();
  }

  private static List<String> runsKept(Connection c, String... ids) throws SQLException {
    try (PreparedStatement s = c.prepareStatement(
        "SELECT id FROM idemgate.reconciliation_runs WHERE id = ANY (?) ORDER BY array_position(?, id)")) {
      s.setArray(1, c.createArrayOf("text", ids));
      s.setArray(2, c.createArrayOf("text", ids));
      List<String> kept = new ArrayList<>();
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          kept.add(rs.getString(1));
        }
      }
      return kept;
    }
  }

  @Test
  @DisplayName("two runs at the same time, each settling one payment under its own settlement_id: the one that takes "
      + "the settlement history second waits for the other's commit and reports a DUPLICATE_CHARGE naming its run")
  void twoRunsAtTheSameTimeSeeEachOthersSettlements() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture();
        Connection holder = Jdbc.connect(TestGateway.pgUrl())) {
      Instant a = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(45));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      String twice = ledger.payment("m1", 4_400, "EUR", "succeeded", p + "ch_twice", a.minus(Duration.ofHours(2)));
      String fileA = HEADER + row("sa_twice", p + "ch_twice", null, m1, 4_400, "EUR", "settled", a);
      String fileB = HEADER + row("sb_twice", p + "ch_twice", null, m1, 4_400, "EUR", "settled", a.plus(Duration.ofDays(30)));

      // The test holds the history, so that both runs reach it before either has recorded anything:
      // without waiting for each other, each would read a history without the other's row.
      holder.setAutoCommit(false);
      LedgerFixture.holdTheSettlementHistory(holder);
      ExecutorService runs = Executors.newFixedThreadPool(2);
      try {
        Future<JsonObject> runA = runs.submit(() -> reconcile("a.csv", fileA, p));
        Future<JsonObject> runB = runs.submit(() -> reconcile("b.csv", fileB, p));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (runsWaitingForTheHistory(holder) < 2 && !(runA.isDone() && runB.isDone())
            && System.nanoTime() < deadline) {
          Thread.sleep(50);
        }
        assertThat(runsWaitingForTheHistory(holder)).as("both runs waiting for the history the test holds").isEqualTo(2);
        holder.commit();

        JsonObject first = runA.get(60, TimeUnit.SECONDS);
        JsonObject second = runB.get(60, TimeUnit.SECONDS);
        Map<String, JsonObject> found = new HashMap<>(bySettlement(first));
        found.putAll(bySettlement(second));
        assertThat(found.keySet()).as("discrepancies of A: %s, of B: %s", first.getJsonArray("discrepancies").encode(),
            second.getJsonArray("discrepancies").encode()).hasSize(1);
        JsonObject duplicate = found.values().iterator().next();
        assertThat(duplicate.getString("category")).isEqualTo("DUPLICATE_CHARGE");
        assertThat(duplicate.getString("payment_id")).isEqualTo(twice);
        JsonObject earlierRun = duplicate.getString("settlement_id").equals("sb_twice") ? first : second;
        assertThat(duplicate.getJsonObject("evidence").getString("earlier_run_id"))
            .isEqualTo(earlierRun.getJsonObject("run").getString("id"));
      } finally {
        runs.shutdownNow();
      }
    }
  }

  @Test
  @DisplayName("a run that waits for the settlement history past its bound fails with a reason naming the wait, and "
      + "takes it once the other run has finished")
  void aRunThatWaitsTooLongForTheHistoryFailsSayingSo() throws Exception {
    try (Connection holder = Jdbc.connect(TestGateway.pgUrl()); Connection run = Jdbc.connect(TestGateway.pgUrl())) {
      holder.setAutoCommit(false);
      LedgerFixture.holdTheSettlementHistory(holder);
      run.setAutoCommit(false);
      assertThatThrownBy(() -> Reconciler.waitForTheSettlementHistory(run, Duration.ofSeconds(1)))
          .isInstanceOf(SQLException.class)
          .hasMessage("another reconciliation run held the settlement history for 1 s; run this file again once it "
              + "has finished");
      run.rollback();
      holder.commit();
      Reconciler.waitForTheSettlementHistory(run, Duration.ofSeconds(1));
      assertThat(sessionsHoldingTheHistory(holder)).isEqualTo(1);
      try (Statement show = run.createStatement(); ResultSet rs = show.executeQuery("SHOW lock_timeout")) {
        rs.next();
        assertThat(rs.getString(1)).as("the run's own lock_timeout once it holds the history").isEqualTo("0");
      }
      run.rollback();
      assertThat(sessionsHoldingTheHistory(holder)).as("held until the run's transaction ends").isZero();
    }
  }

  private static long runsWaitingForTheHistory(Connection c) throws SQLException {
    return LedgerFixture.sessionsOnTheHistoryLock(c, false);
  }

  private static long sessionsHoldingTheHistory(Connection c) throws SQLException {
    return LedgerFixture.sessionsOnTheHistoryLock(c, true);
  }
}
