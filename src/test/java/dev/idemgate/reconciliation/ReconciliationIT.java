package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.TestGateway;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.IntFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reconciliation against the real PostgreSQL, through the command line as a user runs it. */
class ReconciliationIT {
  static final String HEADER = "settlement_id,provider_reference,provider_key,merchant_id,amount,currency,status,settled_at\n";

  @TempDir
  Path dir;

  static String row(String id, String ref, String key, String merchant, long amount, String currency,
      String status, Instant settledAt) {
    return String.join(",", id, ref == null ? "" : ref, key == null ? "" : key, merchant, Long.toString(amount),
        currency, status, settledAt.toString()) + "\n";
  }

  /**
   * Four succeeded payments of merchant m1 (EUR 10.00 to 10.03, references {@code ch_0} to {@code ch_3}) and
   * their settled rows in {@code csv}: the file's plainly matched rows, beside what a test plants. Payment
   * {@code i} is charged at {@code charged(i)} and settled at {@code settled(i)}.
   */
  static void fourMatched(LedgerFixture ledger, StringBuilder csv, IntFunction<Instant> charged,
      IntFunction<Instant> settled) throws SQLException {
    for (int i = 0; i < 4; i++) {
      ledger.payment("m1", 1_000 + i, "EUR", "succeeded", ledger.prefix + "ch_" + i, charged.apply(i));
      csv.append(row("s_" + i, ledger.prefix + "ch_" + i, null, ledger.merchant("m1"), 1_000 + i, "EUR", "settled",
          settled.apply(i)));
    }
  }

  @Test
  @DisplayName("every category planted is found once, with its remediation, in priority order")
  void everyCategory() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
      Instant base = now.minus(Duration.ofDays(6));
      Instant settled = base.plus(Duration.ofHours(6));
      String m1 = ledger.merchant("m1");
      String m2 = ledger.merchant("m2");
      String p = ledger.prefix;
      StringBuilder csv = new StringBuilder(HEADER);
      for (int i = 0; i < 20; i++) {
        ledger.payment(i % 2 == 0 ? "m1" : "m2", 1_000 + 37L * i, "EUR", "succeeded", p + "ch_f" + i, base.plusSeconds(60L * i));
        csv.append(row("s_f" + i, p + "ch_f" + i, null, i % 2 == 0 ? m1 : m2, 1_000 + 37L * i, "EUR", "settled", settled));
      }
      String late = ledger.payment("m1", 777, "EUR", "succeeded", p + "ch_late", now.minus(Duration.ofHours(3)));
      csv.append(row("s_late", p + "ch_late", null, m1, 777, "EUR", "settled", now.minus(Duration.ofHours(1))));

      String duplicate = ledger.payment("m1", 10_000, "EUR", "succeeded", p + "ch_dup", base);
      csv.append(row("s_dup1", p + "ch_dup", null, m1, 10_000, "EUR", "settled", settled));
      csv.append(row("s_dup2", p + "ch_dup", null, m1, 10_000, "EUR", "settled", settled.plus(Duration.ofHours(3))));
      csv.append(row("s_orphan", p + "ch_orphan", null, m1, 5_000, "EUR", "settled", settled));
      String declined = ledger.payment("m2", 7_000, "EUR", "declined", p + "ch_declined", base);
      csv.append(row("s_declined", p + "ch_declined", null, m2, 7_000, "EUR", "settled", settled));
      String drifted = ledger.payment("m1", 20_000, "EUR", "succeeded", p + "ch_amount", base);
      csv.append(row("s_amount", p + "ch_amount", null, m1, 19_500, "EUR", "settled", settled));
      String swapped = ledger.payment("m2", 3_000, "EUR", "succeeded", p + "ch_currency", base);
      csv.append(row("s_currency", p + "ch_currency", null, m2, 3_000, "USD", "settled", settled));
      // Charged once the file had begun (earlier, it may have settled in an earlier file), and more than the lag before it ends.
      String missing = ledger.payment("m2", 3_000, "EUR", "succeeded", p + "ch_missing", settled);
      String recent = ledger.payment("m2", 3_000, "EUR", "succeeded", p + "ch_recent", now.minus(Duration.ofHours(2)));
      String stuckClaim = "pay_" + p + "stuck";
      ledger.key("m2", stuckClaim, "PROCESSING", 2_000, base, base.plusSeconds(30));
      String stuckPending = ledger.payment("m1", 1_500, "EUR", "pending", null, base);
      ledger.key("m1", stuckPending, "PENDING", 1_500, base, base.plusSeconds(30));
      String byKey = ledger.payment("m1", 4_100, "EUR", "succeeded", p + "ch_bykey", base);
      csv.append(row("s_bykey", null, LedgerFixture.providerKey(byKey).toUpperCase(), m1, 4_100, "EUR", "settled", settled));
      String reformatted = ledger.payment("m2", 4_200, "EUR", "succeeded", p + "ch_norm_1", base);
      csv.append(row("s_norm", (p + "ch_norm_1").toUpperCase().replace('_', '-'), null, m2, 4_200, "EUR", "settled", settled));
      csv.append("s_bad1,x,,").append(m1).append(",12.50,EUR,settled,").append(settled).append('\n');
      csv.append("s_bad2,y,,").append(m1).append(",100,EURO,settled,").append(settled).append('\n');
      csv.append(row("s_other", "ch_someone_else", null, "other_merchant", 999, "EUR", "settled", settled));
      Path file = dir.resolve("settlement.csv");
      Files.writeString(file, csv);
      int badLine1 = lineOf(csv, "s_bad1");
      int badLine2 = lineOf(csv, "s_bad2");

      Path report = dir.resolve("report.json");
      LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
          "--out", report.toString());

      assertThat(cli.status()).as(cli.err()).isZero();
      assertThat(cli.err()).contains("line " + badLine1 + ": amount '12.50'").contains("line " + badLine2 + ": currency 'EURO'");
      JsonObject json = LedgerFixture.readJson(report);
      JsonObject summary = json.getJsonObject("summary");
      assertThat(summary.getJsonObject("by_category").getMap()).containsExactlyInAnyOrderEntriesOf(Map.of(
          "DUPLICATE_CHARGE", 1, "ORPHAN_AT_PROVIDER", 1, "STATUS_MISMATCH", 1, "AMOUNT_MISMATCH", 1,
          "CURRENCY_MISMATCH", 1, "MISSING_IN_SETTLEMENT", 1, "STUCK_IN_LEDGER", 2));
      assertThat(summary.getJsonObject("rows").getLong("malformed")).isEqualTo(2);
      assertThat(summary.getJsonObject("rows").getLong("outside_merchant_filter")).isEqualTo(1);
      assertThat(summary.getJsonObject("matches").getJsonObject("provider_key").getLong("rows")).isEqualTo(1);
      assertThat(summary.getJsonObject("matches").getJsonObject("provider_reference_normalized").getLong("rows")).isEqualTo(1);
      assertThat(json.getJsonArray("malformed_rows").stream().map(o -> ((JsonObject) o).getLong("line")))
          .containsExactly((long) badLine1, (long) badLine2);

      // Scores: value in EUR x severity x the same age factor, so the order is fixed by value and severity.
      JsonArray found = json.getJsonArray("discrepancies");
      List<String> categories = new ArrayList<>();
      for (int i = 0; i < found.size(); i++) {
        JsonObject d = found.getJsonObject(i);
        assertThat(d.getInteger("priority")).isEqualTo(i + 1);
        assertThat(d.getString("remediation")).as(d.encode()).isEqualTo(Category.valueOf(d.getString("category")).remediation().name());
        categories.add(d.getString("category"));
      }
      assertThat(categories).containsExactly("DUPLICATE_CHARGE", "STATUS_MISMATCH", "ORPHAN_AT_PROVIDER",
          "CURRENCY_MISMATCH", "MISSING_IN_SETTLEMENT", "STUCK_IN_LEDGER", "STUCK_IN_LEDGER", "AMOUNT_MISMATCH");
      JsonObject first = found.getJsonObject(0);
      {
        JsonObject d = first;
        assertThat(d.getString("payment_id")).isEqualTo(duplicate);
        assertThat(d.getString("settlement_id")).isEqualTo("s_dup2");
        assertThat(d.getString("remediation")).isEqualTo("REFUND_DUPLICATE");
        assertThat(d.getJsonObject("evidence").getString("first_settlement_id")).isEqualTo("s_dup1");
        assertThat(d.getDouble("confidence")).isEqualTo(1.0);
      }
      assertThat(found.getJsonObject(1).getString("payment_id")).isEqualTo(declined);
      assertThat(found.getJsonObject(1).getJsonObject("ledger").getString("status")).isEqualTo("declined");
      assertThat(found.getJsonObject(2).getString("settlement_id")).isEqualTo("s_orphan");
      assertThat(found.getJsonObject(2).getString("payment_id")).isNull();
      assertThat(found.getJsonObject(3).getString("payment_id")).isEqualTo(swapped);
      assertThat(found.getJsonObject(4).getString("payment_id")).isEqualTo(missing);
      assertThat(found.getJsonObject(4).getString("remediation")).isEqualTo("REQUERY_PROVIDER");
      assertThat(List.of(found.getJsonObject(5).getString("payment_id"), found.getJsonObject(6).getString("payment_id")))
          .containsExactly(stuckClaim, stuckPending);
      {
        JsonObject d = found.getJsonObject(7);
        assertThat(d.getString("payment_id")).isEqualTo(drifted);
        assertThat(d.getJsonObject("value").getLong("amount")).isEqualTo(500);
        assertThat(d.getJsonObject("value").getString("major")).isEqualTo("5.00");
        assertThat(d.getJsonObject("ledger").getLong("amount")).isEqualTo(20_000);
        assertThat(d.getJsonObject("settlement").getLong("amount")).isEqualTo(19_500);
      }
      String everything = found.encode();
      assertThat(everything).doesNotContain(recent, late, byKey, reformatted);

      String runId = json.getJsonObject("run").getString("id");
      Path csvReport = dir.resolve("report.csv");
      Path html = dir.resolve("report.html");
      assertThat(LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
          "--format", "csv", "--out", csvReport.toString()).status()).isZero();
      List<String> lines = Files.readAllLines(csvReport);
      assertThat(lines).hasSize(9);
      assertThat(lines.get(0)).isEqualTo(String.join(",", ReportWriter.CSV_COLUMNS));
      // priority first; the id (that run's own), then the resolution's time and note (none while open), added
      // after the others so positional readers keep theirs.
      assertThat(lines.get(1)).matches("1,DUPLICATE_CHARGE,REFUND_DUPLICATE,open,.*,\\d+,,");
      assertThat(LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
          "--format", "html", "--out", html.toString()).status()).isZero();
      String page = Files.readString(html);
      assertThat(page).contains("<svg", "Duplicate charge", "Refund the duplicate", "EUR 100.00");
      // Self-contained: nothing is fetched when the page is opened.
      assertThat(page).doesNotContain("<script", "src=", "<link", "url(", "@import");

      try (Connection c = Jdbc.connect(TestGateway.pgUrl())) {
        assertThat(ReconciliationStore.run(c, runId).orElseThrow().status()).isEqualTo("COMPLETED");
        assertThat(count(c, "SELECT count(*) FROM idemgate.reconciliation_discrepancies WHERE run_id = ? AND status = 'open'", runId))
            .isEqualTo(8);
      }
    }
  }

  @Test
  @DisplayName("probabilistic matching without any reference: precision >= 0.99 and recall >= 0.95 against the planted truth")
  void probabilisticMatching() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Random random = new Random(20_260_101);
      Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
      List<SettlementFileWriter.Charge> charges = new ArrayList<>();
      List<String> currencies = List.of("EUR", "EUR", "EUR", "EUR", "EUR", "EUR", "EUR", "USD", "USD", "GBP");
      ledger.connection.setAutoCommit(false);
      try (PreparedStatement s = ledger.connection.prepareStatement("""
          INSERT INTO idemgate.payments (id, merchant_id, provider_key, amount, currency, status, provider,
            provider_reference, created_at) VALUES (?, ?, ?, ?, ?, 'succeeded', 'simulator', ?, ?)""")) {
        for (int i = 0; i < 4_000; i++) {
          String id = "pay_" + ledger.prefix + i;
          String merchant = ledger.merchant("m" + random.nextInt(40));
          long amount = Math.round(Math.exp(Math.log(200) + random.nextDouble() * Math.log(1_000)));
          String currency = currencies.get(random.nextInt(currencies.size()));
          Instant created = now.minus(Duration.ofMinutes(3 * 24 * 60 + random.nextInt(9 * 24 * 60)));
          s.setString(1, id);
          s.setString(2, merchant);
          s.setString(3, LedgerFixture.providerKey(id));
          s.setLong(4, amount);
          s.setString(5, currency);
          s.setString(6, "ch_" + ledger.prefix + i);
          s.setTimestamp(7, java.sql.Timestamp.from(created));
          s.addBatch();
          charges.add(new SettlementFileWriter.Charge(id, "ch_" + ledger.prefix + i, LedgerFixture.providerKey(id),
              merchant, amount, currency, "succeeded", created));
        }
        s.executeBatch();
      }
      ledger.connection.commit();
      ledger.connection.setAutoCommit(true);
      charges.sort(java.util.Comparator.comparing(SettlementFileWriter.Charge::chargedAt));

      // No row keeps a reference or a key; amounts drift, rows go missing, orphans appear.
      SettlementFileWriter.Plan noisy = new SettlementFileWriter.Plan(0, 0.03, 0.03, 0, 0.02, 0, 0, 0, 1.0);
      Map<Long, String> truth = new HashMap<>();
      Map<Long, String> drifted = new HashMap<>();
      Path file = dir.resolve("noisy.csv");
      try (var out = Files.newBufferedWriter(file, StandardCharsets.UTF_8);
           SettlementFileWriter writer = new SettlementFileWriter(out, Map.of(), noisy, 7, now, w -> {
             if (w.line() > 0 && w.paymentId() != null) {
               truth.put(w.line(), w.paymentId());
             }
             if (w.plants().contains(SettlementFileWriter.Plant.AMOUNT_DRIFT)) {
               drifted.put(w.line(), w.paymentId());
             }
           })) {
        charges.forEach(writer::write);
      }

      Path report = dir.resolve("noisy.json");
      LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(),
          "--merchant-prefix", ledger.prefix, "--out", report.toString());
      assertThat(cli.status()).as(cli.err()).isZero();
      String runId = LedgerFixture.readJson(report).getJsonObject("run").getString("id");

      Map<Long, String> predicted = new HashMap<>();
      try (Connection c = Jdbc.connect(TestGateway.pgUrl());
           PreparedStatement s = c.prepareStatement(
               "SELECT settlement_line, payment_id FROM idemgate.reconciliation_matches WHERE run_id = ? AND method = 'probabilistic'")) {
        s.setString(1, runId);
        try (ResultSet rs = s.executeQuery()) {
          while (rs.next()) {
            predicted.put(rs.getLong(1), rs.getString(2));
          }
        }
      }
      long correct = predicted.entrySet().stream().filter(e -> e.getValue().equals(truth.get(e.getKey()))).count();
      double precision = correct / (double) predicted.size();
      double recall = correct / (double) truth.size();
      System.out.printf("probabilistic matching: %d true pairs, %d predicted, %d correct: precision %.4f, recall %.4f%n",
          truth.size(), predicted.size(), correct, precision, recall);
      assertThat(precision).isGreaterThanOrEqualTo(0.99);
      assertThat(recall).isGreaterThanOrEqualTo(0.95);
      // A drifted amount is weak evidence among a merchant's many payments: the drifted rows that were
      // matched are AMOUNT_MISMATCH, the others are left for a person with their true payment named.
      JsonObject json = LedgerFixture.readJson(report);
      long driftedMatched = drifted.keySet().stream().filter(predicted::containsKey).count();
      assertThat(json.getJsonObject("summary").getJsonObject("by_category").getLong("AMOUNT_MISMATCH")).isEqualTo(driftedMatched);
      long namedForReview = json.getJsonArray("discrepancies").stream().map(JsonObject.class::cast)
          .filter(d -> d.getString("category").equals("ORPHAN_AT_PROVIDER") && drifted.containsKey(d.getLong("settlement_line")))
          .filter(d -> drifted.get(d.getLong("settlement_line")).equals(d.getJsonObject("evidence").getString("candidate_payment_id")))
          .count();
      System.out.printf("drifted rows: %d, matched %d, left for review with the right candidate %d%n",
          drifted.size(), driftedMatched, namedForReview);
      assertThat(driftedMatched + namedForReview).isGreaterThanOrEqualTo(drifted.size() / 2);
    }
  }

  @Test
  @DisplayName("--provider P compares the file with P's payments and P's claims only: the ledger names an acquirer "
      + "by its provider_name, a claim by http NAME")
  void providerFilter() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(5));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      String northwind = ledger.payment("m1", 10_000, "EUR", "succeeded", p + "ch_northwind", base);
      try (var named = ledger.connection.prepareStatement("UPDATE idemgate.payments SET provider = 'northwind' WHERE id = ?")) {
        named.setString(1, northwind);
        named.executeUpdate();
      }
      ledger.payment("m1", 6_000, "EUR", "succeeded", p + "ch_simulated", base); // the simulator's: not in this file
      String northwindClaim = "pay_" + p + "northwind_stuck";
      ledger.key("m1", northwindClaim, "PROCESSING", 2_000, base, base.plusSeconds(30), "http northwind");
      ledger.key("m1", "pay_" + p + "other_stuck", "PROCESSING", 2_000, base, base.plusSeconds(30), "http http://other.example");
      Path file = dir.resolve("northwind.csv");
      Files.writeString(file, HEADER
          + row("s_northwind", p + "ch_northwind", null, m1, 10_000, "EUR", "settled", base.plus(Duration.ofHours(4))));
      Path report = dir.resolve("northwind.json");

      LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
          "--provider", "northwind", "--out", report.toString());

      assertThat(cli.status()).as(cli.err()).isZero();
      JsonObject json = LedgerFixture.readJson(report);
      assertThat(json.getJsonObject("summary").getJsonObject("rows").getLong("matched")).isEqualTo(1);
      assertThat(json.getJsonObject("summary").getLong("total")).as(json.encodePrettily()).isEqualTo(1);
      JsonObject stuck = json.getJsonArray("discrepancies").getJsonObject(0);
      assertThat(stuck.getString("category")).isEqualTo("STUCK_IN_LEDGER");
      assertThat(stuck.getString("payment_id")).isEqualTo(northwindClaim);
    }
  }

  @Test
  @DisplayName("a row read twice (same settlement_id) is reported as a repeated line and never matched; "
      + "two settlement ids for one payment are still a DUPLICATE_CHARGE")
  void repeatedRows() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(5));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      String once = ledger.payment("m1", 10_000, "EUR", "succeeded", p + "ch_once", base);
      String twice = ledger.payment("m1", 6_000, "EUR", "succeeded", p + "ch_twice", base);
      String onceRow = row("s_once", p + "ch_once", null, m1, 10_000, "EUR", "settled", base.plus(Duration.ofHours(4)));
      String csv = HEADER + onceRow                                                                               // line 2
          + row("s_twice1", p + "ch_twice", null, m1, 6_000, "EUR", "settled", base.plus(Duration.ofHours(5)))    // line 3
          + row("s_twice2", p + "ch_twice", null, m1, 6_000, "EUR", "settled", base.plus(Duration.ofHours(8)))    // line 4
          + onceRow                                                                                               // line 5: the file re-sent
          + row("s_once", p + "ch_once", null, m1, 12_000, "EUR", "settled", base.plus(Duration.ofHours(4)));     // line 6: same id, other amount
      Path file = dir.resolve("repeated.csv");
      Files.writeString(file, csv);
      Path report = dir.resolve("repeated.json");

      LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
          "--out", report.toString());

      assertThat(cli.status()).as(cli.err()).isZero();
      assertThat(cli.err()).contains("line 5: ", "line 6: ");
      JsonObject json = LedgerFixture.readJson(report);
      JsonObject summary = json.getJsonObject("summary");
      assertThat(summary.getJsonObject("by_category").getLong("DUPLICATE_CHARGE")).isEqualTo(1);
      assertThat(summary.getLong("total")).isEqualTo(1);
      JsonObject duplicate = json.getJsonArray("discrepancies").getJsonObject(0);
      assertThat(duplicate.getString("payment_id")).isEqualTo(twice);
      assertThat(duplicate.getString("settlement_id")).isEqualTo("s_twice2");
      assertThat(json.getJsonArray("discrepancies").encode()).doesNotContain(once);
      JsonObject rows = summary.getJsonObject("rows");
      assertThat(rows.getLong("read")).isEqualTo(5);
      assertThat(rows.getLong("malformed")).isEqualTo(2);
      assertThat(rows.getLong("repeated")).isEqualTo(2);
      assertThat(rows.getLong("reconciled")).isEqualTo(3);
      assertThat(rows.getLong("matched")).isEqualTo(3);
      JsonArray malformed = json.getJsonArray("malformed_rows");
      assertThat(malformed.stream().map(o -> ((JsonObject) o).getLong("line"))).containsExactly(5L, 6L);
      assertThat(malformed.getJsonObject(0).getString("reason")).contains("s_once", "line 2").doesNotContain("amount");
      assertThat(malformed.getJsonObject(1).getString("reason")).contains("s_once", "line 2", "amount");
    }
  }

  @Test
  @DisplayName("MISSING_IN_SETTLEMENT expects only payments whose whole settlement lag the file covers; "
      + "a placeholder settled_at is reported as malformed instead of widening the window")
  void missingOnlyWhereTheFileCoversTheLag() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS).minus(Duration.ofDays(10));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      // Charged two days before the daily file: it settled the next day, in yesterday's file.
      String settledYesterday = ledger.payment("m1", 2_000, "EUR", "succeeded", p + "ch_prev",
          day.minus(Duration.ofDays(2)).plus(Duration.ofHours(10)));
      String old = ledger.payment("m1", 2_500, "EUR", "succeeded", p + "ch_old", day.minus(Duration.ofDays(30)));
      // Charged during the daily file and never settled: only a file that runs the lag past it can say so.
      String never = ledger.payment("m1", 3_000, "EUR", "succeeded", p + "ch_never", day.plus(Duration.ofHours(2)));
      StringBuilder daily = new StringBuilder(HEADER);
      for (int i = 0; i < 6; i++) {
        ledger.payment("m1", 1_000 + i, "EUR", "succeeded", p + "ch_" + i, day.minus(Duration.ofHours(12 - 3L * i)));
        daily.append(row("s_" + i, p + "ch_" + i, null, m1, 1_000 + i, "EUR", "settled", day.plus(Duration.ofHours(1 + 3L * i))));
      }

      JsonObject dailyRun = reconcile(dir.resolve("daily.csv"), daily.toString(), p);
      assertThat(dailyRun.getJsonObject("summary").getJsonObject("by_category").getLong("MISSING_IN_SETTLEMENT")).isZero();
      assertThat(dailyRun.getJsonObject("summary").getLong("total")).isZero();

      String placeholder = row("s_placeholder", "", null, m1, 100, "EUR", "settled", Instant.parse("1970-01-01T00:00:00Z"));
      JsonObject withPlaceholder = reconcile(dir.resolve("placeholder.csv"), daily + placeholder, p);
      JsonObject summary = withPlaceholder.getJsonObject("summary");
      assertThat(summary.getLong("total")).as(withPlaceholder.getJsonArray("discrepancies").encode()).isZero();
      assertThat(summary.getJsonObject("rows").getLong("malformed")).isEqualTo(1);
      assertThat(withPlaceholder.getJsonArray("malformed_rows").getJsonObject(0).getLong("line")).isEqualTo(8);
      assertThat(withPlaceholder.getJsonArray("malformed_rows").getJsonObject(0).getString("reason")).contains("1970-01-01");
      assertThat(summary.getJsonObject("settlement_span").getString("first")).isEqualTo(day.plus(Duration.ofHours(1)).toString());

      // The placeholder carries the id of a real settlement further down: that later line is the settlement.
      String placeholderFirst = HEADER + row("s_0", p + "ch_0", null, m1, 1_000, "EUR", "settled",
          Instant.parse("1970-01-01T00:00:00Z")) + daily.substring(HEADER.length());
      JsonObject strayThenReal = reconcile(dir.resolve("placeholder-first.csv"), placeholderFirst, p);
      JsonObject rows = strayThenReal.getJsonObject("summary").getJsonObject("rows");
      assertThat(rows.getLong("malformed")).as(strayThenReal.getJsonArray("malformed_rows").encode()).isEqualTo(1);
      assertThat(rows.getLong("repeated")).isZero();
      assertThat(rows.getLong("matched")).isEqualTo(6);

      // A file that runs more than the lag past `never` expects it; the payment settled yesterday is still not expected.
      StringBuilder week = new StringBuilder(daily);
      for (int i = 0; i < 2; i++) {
        Instant charged = day.plus(Duration.ofDays(3 + i)).plus(Duration.ofHours(1));
        ledger.payment("m1", 5_000 + i, "EUR", "succeeded", p + "ch_w" + i, charged);
        week.append(row("s_w" + i, p + "ch_w" + i, null, m1, 5_000 + i, "EUR", "settled", charged.plus(Duration.ofHours(2))));
      }
      JsonObject weekly = reconcile(dir.resolve("weekly.csv"), week.toString(), p);
      assertThat(weekly.getJsonObject("summary").getJsonObject("by_category").getLong("MISSING_IN_SETTLEMENT")).isEqualTo(1);
      assertThat(weekly.getJsonArray("discrepancies").getJsonObject(0).getString("payment_id")).isEqualTo(never);
      assertThat(weekly.getJsonObject("summary").getJsonObject("rows").getLong("malformed")).isZero();
      assertThat(weekly.getJsonArray("discrepancies").encode()).doesNotContain(settledYesterday, old);
    }
  }

  @Test
  @DisplayName("a refund or chargeback of a payment charged long before the file is matched in the whole ledger "
      + "(reference as the ledger has it, or provider key), never called an orphan to refund; an orphan reversal "
      + "is to be traced, not refunded; a settled row of an old payment is matched and flagged as settled outside the lag")
  void reversalsOfPaymentsBeforeTheWindow() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      // A week's file, like 1-7 June, holding reversals of payments charged some 40 days before it.
      Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS).minus(Duration.ofDays(10));
      Instant april = day.minus(Duration.ofDays(40));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER);
      for (int i = 0; i < 6; i++) {
        Instant charged = day.plus(Duration.ofDays(i)).plus(Duration.ofHours(2));
        ledger.payment("m1", 1_000 + i, "EUR", "succeeded", p + "ch_" + i, charged);
        csv.append(row("s_" + i, p + "ch_" + i, null, m1, 1_000 + i, "EUR", "settled", charged.plus(Duration.ofHours(3))));
      }
      String chargedBack = ledger.payment("m1", 1_999, "EUR", "succeeded", p + "ch_123", april);
      csv.append(row("cb1", p + "ch_123", null, m1, 1_999, "EUR", "chargeback", day.plus(Duration.ofDays(2))));
      String refunded = ledger.payment("m1", 2_500, "EUR", "succeeded", p + "ch_refund_me", april);
      csv.append(row("rf1", p + "ch_refund_me", null, m1, 2_500, "EUR", "refunded", day.plus(Duration.ofDays(3))));
      // Outside the window a reference must be written as the ledger has it: a reformatted one is
      // an orphan, but a reversal's, never advised to be refunded.
      ledger.payment("m1", 2_600, "EUR", "succeeded", p + "ch_reformatted", april);
      csv.append(row("rf3", (p + "ch_reformatted").toUpperCase().replace('_', '-'), null, m1, 2_600, "EUR", "refunded",
          day.plus(Duration.ofDays(3))));
      // A settled row of an old payment is its settlement (late, or a second one after an earlier
      // file's): matched by its reference and flagged, never an orphan to refund.
      String settledLate = ledger.payment("m1", 2_700, "EUR", "succeeded", p + "ch_settled_before", april);
      csv.append(row("s_again", p + "ch_settled_before", null, m1, 2_700, "EUR", "settled", day.plus(Duration.ofDays(3))));
      String byKey = ledger.payment("m1", 3_100, "EUR", "succeeded", null, april);
      csv.append(row("rf2", null, LedgerFixture.providerKey(byKey), m1, 3_100, "EUR", "refunded", day.plus(Duration.ofDays(3))));
      // Another merchant's old payment with the same reference (simulator references restart) is not m1's.
      ledger.payment("m2", 4_000, "EUR", "succeeded", p + "ch_reused", april);
      csv.append(row("cb2", p + "ch_reused", null, m1, 4_000, "EUR", "chargeback", day.plus(Duration.ofDays(4))));

      JsonObject json = reconcile(dir.resolve("june.csv"), csv.toString(), p);

      JsonObject byCategory = json.getJsonObject("summary").getJsonObject("by_category");
      assertThat(byCategory.getLong("ORPHAN_AT_PROVIDER")).as(json.getJsonArray("discrepancies").encode()).isEqualTo(2);
      assertThat(byCategory.getLong("STATUS_MISMATCH")).isEqualTo(3);
      assertThat(byCategory.getLong("MISSING_IN_SETTLEMENT")).isZero();
      Map<String, JsonObject> bySettlement = new HashMap<>();
      json.getJsonArray("discrepancies").forEach(o -> bySettlement.put(((JsonObject) o).getString("settlement_id"), (JsonObject) o));
      for (Map.Entry<String, String> reversal : Map.of("cb1", chargedBack, "rf1", refunded, "rf2", byKey).entrySet()) {
        JsonObject d = bySettlement.get(reversal.getKey());
        assertThat(d.getString("category")).as(reversal.getKey()).isEqualTo("STATUS_MISMATCH");
        assertThat(d.getString("payment_id")).as(reversal.getKey()).isEqualTo(reversal.getValue());
        assertThat(d.getString("remediation")).as(reversal.getKey()).isEqualTo("CORRECT_LEDGER_STATUS");
      }
      for (String reversal : new String[] {"cb2", "rf3"}) {
        JsonObject orphan = bySettlement.get(reversal);
        assertThat(orphan.getString("category")).as(reversal).isEqualTo("ORPHAN_AT_PROVIDER");
        assertThat(orphan.getString("remediation")).as(reversal).isEqualTo("FIND_REVERSED_PAYMENT");
      }
      assertThat(bySettlement.get("s_again")).isNull();
      JsonObject outside = json.getJsonObject("summary").getJsonObject("settled_outside_lag");
      assertThat(outside.getLong("rows")).isEqualTo(1);
      assertThat(outside.getJsonArray("first").getJsonObject(0).getString("payment_id")).isEqualTo(settledLate);
      assertThat(json.getJsonObject("summary").getJsonObject("ledger").getLong("payments_in_window")).isEqualTo(6);
    }
  }

  @Test
  @DisplayName("a refund or chargeback of the same amount nets an extra settlement of its payment: settled twice and "
      + "refunded once is one charge, no discrepancy; settled three times and refunded once is one DUPLICATE_CHARGE; "
      + "a refund of a payment settled once, or one of another amount, is reported as before")
  void reversalsNetExtraSettlements() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS).minus(Duration.ofDays(10));
      Instant charged = day.minus(Duration.ofHours(4));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER);
      fourMatched(ledger, csv, i -> charged, i -> day.plus(Duration.ofHours(i)));
      // Settled twice, refunded once, all of one amount: the customer paid once, as the ledger says.
      ledger.payment("m1", 3_000, "EUR", "succeeded", p + "ch_d", charged);
      csv.append(row("sd1", p + "ch_d", null, m1, 3_000, "EUR", "settled", day));
      csv.append(row("sd2", p + "ch_d", null, m1, 3_000, "EUR", "settled", day.plus(Duration.ofHours(1))));
      csv.append(row("rd1", p + "ch_d", null, m1, 3_000, "EUR", "refunded", day.plus(Duration.ofHours(5))));
      // The same with a chargeback of the duplicate: the customer has that money back too.
      ledger.payment("m1", 3_100, "EUR", "succeeded", p + "ch_c", charged);
      csv.append(row("sc1", p + "ch_c", null, m1, 3_100, "EUR", "settled", day));
      csv.append(row("sc2", p + "ch_c", null, m1, 3_100, "EUR", "settled", day.plus(Duration.ofHours(1))));
      csv.append(row("cc1", p + "ch_c", null, m1, 3_100, "EUR", "chargeback", day.plus(Duration.ofHours(6))));
      // Settled three times, refunded once: one charge too many is left.
      String thrice = ledger.payment("m1", 3_200, "EUR", "succeeded", p + "ch_t", charged);
      csv.append(row("st1", p + "ch_t", null, m1, 3_200, "EUR", "settled", day));
      csv.append(row("st2", p + "ch_t", null, m1, 3_200, "EUR", "settled", day.plus(Duration.ofHours(1))));
      csv.append(row("st3", p + "ch_t", null, m1, 3_200, "EUR", "settled", day.plus(Duration.ofHours(2))));
      csv.append(row("rt1", p + "ch_t", null, m1, 3_200, "EUR", "refunded", day.plus(Duration.ofHours(5))));
      // Settled twice, refunded twice: nothing charged, the ledger still says succeeded.
      String allBack = ledger.payment("m1", 3_300, "EUR", "succeeded", p + "ch_z", charged);
      csv.append(row("sz1", p + "ch_z", null, m1, 3_300, "EUR", "settled", day));
      csv.append(row("sz2", p + "ch_z", null, m1, 3_300, "EUR", "settled", day.plus(Duration.ofHours(1))));
      csv.append(row("rz1", p + "ch_z", null, m1, 3_300, "EUR", "refunded", day.plus(Duration.ofHours(5))));
      csv.append(row("rz2", p + "ch_z", null, m1, 3_300, "EUR", "refunded", day.plus(Duration.ofHours(6))));
      // Settled once and refunded: the ledger should say so (unchanged).
      String refunded = ledger.payment("m1", 3_400, "EUR", "succeeded", p + "ch_r", charged);
      csv.append(row("sr1", p + "ch_r", null, m1, 3_400, "EUR", "settled", day));
      csv.append(row("rr1", p + "ch_r", null, m1, 3_400, "EUR", "refunded", day.plus(Duration.ofHours(5))));
      // Settled twice, refunded in part: no netting of another amount (unchanged).
      String partly = ledger.payment("m1", 3_500, "EUR", "succeeded", p + "ch_p", charged);
      csv.append(row("sp1", p + "ch_p", null, m1, 3_500, "EUR", "settled", day));
      csv.append(row("sp2", p + "ch_p", null, m1, 3_500, "EUR", "settled", day.plus(Duration.ofHours(1))));
      csv.append(row("rp1", p + "ch_p", null, m1, 1_000, "EUR", "refunded", day.plus(Duration.ofHours(5))));

      JsonObject json = reconcile(dir.resolve("netted.csv"), csv.toString(), p);

      Map<String, String> found = new HashMap<>();
      json.getJsonArray("discrepancies").forEach(o -> found.put(((JsonObject) o).getString("settlement_id"),
          ((JsonObject) o).getString("category") + " " + ((JsonObject) o).getString("payment_id")));
      assertThat(found).as("discrepancies by settlement_id").containsExactlyInAnyOrderEntriesOf(Map.of(
          "st3", "DUPLICATE_CHARGE " + thrice,
          "rz2", "STATUS_MISMATCH " + allBack,
          "rr1", "STATUS_MISMATCH " + refunded,
          "sp2", "DUPLICATE_CHARGE " + partly,
          "rp1", "STATUS_MISMATCH " + partly));
      Map<String, JsonObject> bySettlement = new HashMap<>();
      json.getJsonArray("discrepancies").forEach(o -> bySettlement.put(((JsonObject) o).getString("settlement_id"), (JsonObject) o));
      JsonObject left = bySettlement.get("st3");
      assertThat(left.getString("remediation")).isEqualTo("REFUND_DUPLICATE");
      assertThat(left.getJsonObject("evidence").getLong("times_settled")).isEqualTo(3);
      assertThat(left.getJsonObject("evidence").getLong("reversals_netted")).isEqualTo(1);
      assertThat(left.getJsonObject("evidence").getJsonArray("netted_settlement_ids").getList()).containsExactly("st2", "rt1");
      assertThat(bySettlement.get("sp2").getJsonObject("evidence").containsKey("reversals_netted")).isFalse();
      assertThat(bySettlement.get("rr1").getString("remediation")).isEqualTo("CORRECT_LEDGER_STATUS");
      // Netted: sd2 with rd1, sc2 with cc1, st2 with rt1, sz2 with rz1.
      assertThat(json.getJsonObject("summary").getJsonObject("rows").getLong("netted")).isEqualTo(8);
      assertThat(json.getJsonObject("summary").getJsonObject("rows").getLong("matched")).isEqualTo(23);
    }
  }

  @Test
  @DisplayName("a placeholder settled_at PostgreSQL cannot store (0000-01-01, -0001-…, +12345-…) is a malformed line; "
      + "the run completes")
  void placeholderYearsAreMalformedLines() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS).minus(Duration.ofDays(10));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER);
      for (int i = 0; i < 3; i++) {
        ledger.payment("m1", 1_000 + i, "EUR", "succeeded", p + "ch_" + i, day.plus(Duration.ofHours(i)));
        csv.append(row("s_" + i, p + "ch_" + i, null, m1, 1_000 + i, "EUR", "settled", day.plus(Duration.ofHours(i + 2))));
      }
      for (String placeholder : List.of("0000-01-01", "-0001-01-01T00:00:00Z", "+12345-01-01T00:00:00Z")) {
        csv.append(String.join(",", "s" + placeholder, p + "ch_x", "", m1, "100", "EUR", "settled", placeholder)).append('\n');
      }
      JsonObject json = reconcile(dir.resolve("placeholders.csv"), csv.toString(), p);
      JsonObject rows = json.getJsonObject("summary").getJsonObject("rows");
      assertThat(rows.getLong("malformed")).isEqualTo(3);
      assertThat(rows.getLong("matched")).isEqualTo(3);
      assertThat(json.getJsonArray("malformed_rows").stream().map(o -> ((JsonObject) o).getLong("line")))
          .containsExactly(5L, 6L, 7L);
    }
  }

  @Test
  @DisplayName("a COPY failure is told by its SQLSTATE and first line, without the values of the row PostgreSQL quotes")
  void copyFailureDoesNotQuoteTheRow() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Connection c = ledger.connection;
      c.setAutoCommit(false);
      try (java.sql.Statement s = c.createStatement()) {
        s.execute("CREATE TEMP TABLE copy_probe (reference text, settled_at timestamptz) ON COMMIT DROP");
      }
      String card = "4242424242424242";
      java.io.IOException failure = null;
      try (java.io.Writer out = new java.io.OutputStreamWriter(new org.postgresql.copy.PGCopyOutputStream(
          c.unwrap(org.postgresql.PGConnection.class), "COPY copy_probe FROM STDIN"), StandardCharsets.UTF_8)) {
        out.write(card + "\t0000-01-01T00:00:00Z\n");
      } catch (java.io.IOException e) {
        failure = e;
      } finally {
        c.rollback();
        c.setAutoCommit(true);
      }
      assertThat(failure).isNotNull();
      java.sql.SQLException said = Reconciler.copyFailed(failure);
      assertThat(said.getMessage()).contains("COPY", "SQLSTATE").doesNotContain(card).doesNotContain("0000-01-01")
          .doesNotContain("\n");
      assertThat(said.getCause()).isNull();
    }
  }

  @Test
  @DisplayName("a repeated settlement_id is named in its reason by a short prefix, and never when it looks like a card number")
  void repeatedIdsAreEchoedShortAndCardFree() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS).minus(Duration.ofDays(10));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      // As long as a settlement_id may be (a longer one is malformed for its length alone).
      String longId = "s" + "9".repeat(SettlementReader.MAX_SETTLEMENT_ID_CHARS - 1);
      String cardId = "4242424242424242";
      StringBuilder csv = new StringBuilder(HEADER);
      for (String id : List.of(longId, cardId)) {
        for (int copy = 0; copy < 2; copy++) {
          csv.append(row(id, p + "ch_" + id.length(), null, m1, 1_000, "EUR", "settled", day.plus(Duration.ofHours(copy))));
        }
      }
      Path file = dir.resolve("repeated-ids.csv");
      Files.writeString(file, csv);
      Path report = dir.resolve("repeated-ids.json");
      LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
          "--out", report.toString());
      assertThat(cli.status()).as(cli.err()).isZero();
      assertThat(cli.err()).doesNotContain(cardId).hasSizeLessThan(2_000);
      JsonArray malformed = LedgerFixture.readJson(report).getJsonArray("malformed_rows");
      assertThat(malformed).hasSize(2);
      for (Object o : malformed) {
        String reason = ((JsonObject) o).getString("reason");
        assertThat(reason).doesNotContain(cardId).hasSizeLessThan(300);
      }
    }
  }

  @Test
  @DisplayName("a settlement_id too long to be an identifier (2,000 random characters) is a malformed line, not a "
      + "discrepancy that an operator then cannot resolve: every discrepancy of the run can be resolved")
  void overlongSettlementIdIsMalformedNotUnresolvable() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS).minus(Duration.ofDays(10));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      // Random letters and digits, which PostgreSQL cannot compress below its index row limit (2,704 bytes).
      Random random = new Random(7);
      StringBuilder longId = new StringBuilder("s");
      while (longId.length() < 3_000) {
        longId.append(Character.forDigit(random.nextInt(36), 36));
      }
      String csv = HEADER + row(longId.toString(), p + "ch_long", null, m1, 1_000, "EUR", "settled", day)
          + row("s_short", p + "ch_short", null, m1, 2_000, "EUR", "settled", day);
      JsonObject found = reconcile(dir.resolve("long-id.csv"), csv, p);
      String runId = found.getJsonObject("run").getString("id");
      try (Connection c = Jdbc.connect(TestGateway.pgUrl())) {
        for (Object o : found.getJsonArray("discrepancies")) {
          JsonObject d = (JsonObject) o;
          assertThat(ReconciliationStore.resolve(c, runId, d.getLong("id"), "checked")).as(d.getString("category"))
              .isInstanceOf(ReconciliationStore.Resolution.Resolved.class);
        }
      }
      assertThat(found.getJsonArray("discrepancies").stream().map(o -> ((JsonObject) o).getString("settlement_id")))
          .containsExactly("s_short");
      JsonArray malformed = found.getJsonArray("malformed_rows");
      assertThat(malformed).hasSize(1);
      assertThat(malformed.getJsonObject(0).getLong("line")).isEqualTo(2);
      assertThat(malformed.getJsonObject(0).getString("reason")).contains("settlement_id").contains("longer than")
          .hasSizeLessThan(200);
    }
  }

  @Test
  @DisplayName("a payment pending for days is STUCK_IN_LEDGER although recovery, asking about it every few seconds, "
      + "renews its lease each time; so is a claim recovery took over, and a pending payment with no record; a claim "
      + "still within its first lease is not")
  void pendingForDaysIsStuckWhateverRecoveryWrites() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
      Instant base = now.minus(Duration.ofDays(2));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER);
      fourMatched(ledger, csv, i -> base.plus(Duration.ofHours(i)), i -> base.plus(Duration.ofHours(20 + i)));
      // Its charge timed out two days ago; recovery has asked the acquirer about it ever since (past
      // the acquirer's memory of keys, it gets no answer), and its last take gave it a lease to now + 6 s.
      String unanswered = ledger.payment("m1", 5_200, "EUR", "pending", null, base);
      ledger.key("m1", unanswered, "PENDING", 5_200, base, base.plusSeconds(6));
      ledger.askedAboutByRecovery(unanswered, 40, now);
      // The same, and the acquirer settled it: matched by our provider key.
      String settledPending = ledger.payment("m1", 6_300, "EUR", "pending", null, base.plusSeconds(60));
      ledger.key("m1", settledPending, "PENDING", 6_300, base.plusSeconds(60), base.plusSeconds(66));
      ledger.askedAboutByRecovery(settledPending, 40, now);
      csv.append(row("s_pending", null, LedgerFixture.providerKey(settledPending), m1, 6_300, "EUR", "settled",
          base.plus(Duration.ofHours(22))));
      // A claim whose owner died: recovery took it over, and holds it with a lease of its own.
      String takenOver = "pay_" + p + "taken_over";
      ledger.key("m1", takenOver, "PROCESSING", 2_400, base.plusSeconds(120), base.plusSeconds(126));
      ledger.askedAboutByRecovery(takenOver, 1, now);
      // Pending in the ledger with no record left to settle it (as settlement-demo --seed-ledger makes them).
      String noRecord = ledger.payment("m1", 3_100, "EUR", "pending", null, base.plusSeconds(180));
      // Claimed a moment ago, its owner still within its lease: in flight, not stuck.
      String inFlight = "pay_" + p + "in_flight";
      ledger.key("m1", inFlight, "PROCESSING", 2_700, now.minusSeconds(2), now.plusSeconds(28));

      JsonObject json = reconcile(dir.resolve("pending.csv"), csv.toString(), p);

      Map<String, String> categories = new HashMap<>();
      Map<String, JsonObject> stuck = new HashMap<>();
      for (Object o : json.getJsonArray("discrepancies")) {
        JsonObject d = (JsonObject) o;
        categories.merge(d.getString("payment_id"), d.getString("category"), (a, b) -> a + "," + b);
        stuck.put(d.getString("payment_id"), d);
      }
      assertThat(categories).containsExactlyInAnyOrderEntriesOf(Map.of(unanswered, "STUCK_IN_LEDGER",
          settledPending, "STUCK_IN_LEDGER", takenOver, "STUCK_IN_LEDGER", noRecord, "STUCK_IN_LEDGER"));
      assertThat(stuck.get(settledPending).getJsonObject("evidence").getBoolean("provider_settled")).isTrue();
      assertThat(stuck.get(unanswered).getJsonObject("evidence").getString("key_state")).isEqualTo("PENDING");
      // The lease recovery gave itself has not expired: it is not shown as one that did.
      assertThat(stuck.get(unanswered).getJsonObject("evidence").containsKey("lease_expired_at")).isFalse();
      assertThat(stuck).doesNotContainKey(inFlight);
    }
  }

  @Test
  @DisplayName("a payment pending for seconds, whose charge may still land (within its lease and recovery's takeover "
      + "grace, lease + provider_timeout + 1 s), is in flight: counted, not STUCK_IN_LEDGER, nor a STATUS_MISMATCH "
      + "when the file settles it; one pending for two minutes is stuck")
  void pendingForSecondsIsInFlightNotStuck() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER);
      fourMatched(ledger, csv, i -> now.minus(Duration.ofHours(30 - i)), i -> now.minus(Duration.ofHours(10 - i)));
      // Timed out a few seconds ago and answered 202: recovery's first inquiry is not even due.
      String young = ledger.payment("m1", 4_400, "EUR", "pending", null, now.minusSeconds(5));
      ledger.key("m1", young, "PENDING", 4_400, now.minusSeconds(5), now.plusSeconds(25));
      // The same, and the acquirer's settlement of it is in the file already.
      String youngSettled = ledger.payment("m1", 5_500, "EUR", "pending", null, now.minusSeconds(8));
      ledger.key("m1", youngSettled, "PENDING", 5_500, now.minusSeconds(8), now.plusSeconds(22));
      csv.append(row("s_young", null, LedgerFixture.providerKey(youngSettled), m1, 5_500, "EUR", "settled", now.minusSeconds(1)));
      // Pending for two minutes: past the default lease (30 s) and takeover grace (11 s).
      String old = ledger.payment("m1", 6_600, "EUR", "pending", null, now.minusSeconds(120));
      ledger.key("m1", old, "PENDING", 6_600, now.minusSeconds(120), now.minusSeconds(90));

      JsonObject json = reconcile(dir.resolve("young.csv"), csv.toString(), p);

      Map<String, String> categories = new HashMap<>();
      for (Object o : json.getJsonArray("discrepancies")) {
        JsonObject d = (JsonObject) o;
        categories.merge(String.valueOf(d.getString("payment_id")), d.getString("category"), (a, b) -> a + "," + b);
      }
      assertThat(categories).as(json.getJsonArray("discrepancies").encode())
          .containsExactlyInAnyOrderEntriesOf(Map.of(old, "STUCK_IN_LEDGER"));
      assertThat(json.getJsonObject("summary").getJsonObject("ledger").getLong("payments_in_flight")).isEqualTo(2);
    }
  }

  @Test
  @DisplayName("a PENDING record with no ledger row (the row lost to a restore or a hand repair) is STUCK_IN_LEDGER, "
      + "and a settlement of it is matched to it by our provider key instead of being an orphan to refund")
  void pendingRecordWithoutLedgerRowIsStuck() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
      Instant base = now.minus(Duration.ofDays(2));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER);
      fourMatched(ledger, csv, i -> base.plus(Duration.ofHours(i)), i -> base.plus(Duration.ofHours(20 + i)));
      String unsettled = "pay_" + p + "pending_no_row";
      ledger.key("m1", unsettled, "PENDING", 4_700, base, base.plusSeconds(30));
      String settled = "pay_" + p + "pending_no_row_settled";
      ledger.key("m1", settled, "PENDING", 5_900, base.plusSeconds(60), base.plusSeconds(90));
      csv.append(row("s_settled", null, LedgerFixture.providerKey(settled), m1, 5_900, "EUR", "settled",
          base.plus(Duration.ofHours(22))));

      JsonObject json = reconcile(dir.resolve("pending-no-row.csv"), csv.toString(), p);

      Map<String, String> categories = new HashMap<>();
      Map<String, JsonObject> byPayment = new HashMap<>();
      for (Object o : json.getJsonArray("discrepancies")) {
        JsonObject d = (JsonObject) o;
        categories.merge(String.valueOf(d.getString("payment_id")), d.getString("category"), (a, b) -> a + "," + b);
        byPayment.put(d.getString("payment_id"), d);
      }
      assertThat(categories).as(json.getJsonArray("discrepancies").encode())
          .containsExactlyInAnyOrderEntriesOf(Map.of(unsettled, "STUCK_IN_LEDGER", settled, "STUCK_IN_LEDGER"));
      assertThat(byPayment.get(settled).getString("settlement_id")).isEqualTo("s_settled");
      assertThat(byPayment.get(settled).getJsonObject("evidence").getBoolean("provider_settled")).isTrue();
      assertThat(byPayment.get(unsettled).getJsonObject("evidence").getString("key_state")).isEqualTo("PENDING");
    }
  }

  @Test
  @DisplayName("settlement-demo --seed-ledger claims its two stuck claims for a provider no gateway's recovery takes "
      + "(a claim without one is taken by any), and reconciliation reports both as STUCK_IN_LEDGER")
  void seededStuckClaimsAreNoGatewaysAndStuck() throws Exception {
    // A moment of its own, so that the two claims seeded are told from any other demo's.
    Instant now = Instant.parse("2001-02-03T04:05:06Z").plusMillis(ThreadLocalRandom.current().nextInt(86_400_000));
    try (Connection c = Jdbc.connect(TestGateway.pgUrl())) {
      List<String> claims = new ArrayList<>();
      List<String> providers = new ArrayList<>();
      String runId = null;
      try {
        SettlementDemoCommand.seedDemoLedger(c, 0, new Random(7), now);
        try (PreparedStatement s = c.prepareStatement("""
            SELECT payment_id, provider_id FROM idemgate.idempotency_keys
            WHERE merchant_id IN ('demo_shop_1', 'demo_shop_2') AND created_at IN (?, ?) ORDER BY created_at""")) {
          s.setTimestamp(1, java.sql.Timestamp.from(now.minus(Duration.ofHours(50))));
          s.setTimestamp(2, java.sql.Timestamp.from(now.minus(Duration.ofHours(30))));
          try (ResultSet rs = s.executeQuery()) {
            while (rs.next()) {
              claims.add(rs.getString(1));
              providers.add(rs.getString(2));
            }
          }
        }
        assertThat(claims).hasSize(2);
        assertThat(providers).as("the provider ids of the seeded claims")
            .containsOnly(SettlementDemoCommand.DEMO_CLAIMS_PROVIDER);
        for (Map<String, String> gateway : List.of(Map.<String, String>of(),
            Map.of("IDEMGATE_PROVIDER", "http", "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:8181"),
            Map.of("IDEMGATE_PROVIDER", "http", "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:8181",
                "IDEMGATE_PROVIDER_NAME", "settlement-demo"))) {
          assertThat(dev.idemgate.config.ConfigLoader.load(Optional.empty(), gateway).recoveredProviderIds())
              .doesNotContain(SettlementDemoCommand.DEMO_CLAIMS_PROVIDER);
        }
        Path file = dir.resolve("demo.csv");
        Files.writeString(file, HEADER + row("s_demo", "ch_nobody", null, "demo_shop_1", 100, "EUR", "settled", now));
        Path report = dir.resolve("demo.json");
        LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix",
            "demo_shop_", "--from", now.minus(Duration.ofDays(3)).toString(), "--to", now.toString(),
            "--out", report.toString());
        assertThat(cli.status()).as(cli.err()).isZero();
        JsonObject json = LedgerFixture.readJson(report);
        runId = json.getJsonObject("run").getString("id");
        List<String> stuck = new ArrayList<>();
        for (Object o : json.getJsonArray("discrepancies")) {
          if (((JsonObject) o).getString("category").equals("STUCK_IN_LEDGER")) {
            stuck.add(((JsonObject) o).getString("payment_id"));
          }
        }
        assertThat(stuck).containsExactlyInAnyOrderElementsOf(claims);
      } finally {
        try (PreparedStatement s = c.prepareStatement("DELETE FROM idemgate.idempotency_keys WHERE payment_id = ANY(?)")) {
          s.setArray(1, c.createArrayOf("text", claims.toArray()));
          s.executeUpdate();
        }
        if (runId != null) {
          try (PreparedStatement s = c.prepareStatement("DELETE FROM idemgate.reconciliation_runs WHERE id = ?")) {
            s.setString(1, runId);
            s.executeUpdate();
          }
        }
      }
    }
  }

  /** Runs {@code reconcile} with a 2-day lag on {@code csv}, written to {@code file}; returns the JSON report. */
  private static JsonObject reconcile(Path file, String csv, String merchantPrefix) throws Exception {
    Files.writeString(file, csv);
    Path report = file.resolveSibling(file.getFileName() + ".json");
    LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix",
        merchantPrefix, "--settlement-lag", "2d", "--out", report.toString());
    assertThat(cli.status()).as(cli.err()).isZero();
    return LedgerFixture.readJson(report);
  }

  @Test
  @DisplayName("a file that is not a settlement CSV gets one clear line on stderr and exit status 2")
  void badFiles() throws Exception {
    Path png = dir.resolve("picture.png");
    Files.write(png, new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, (byte) 0xff});
    Path json = dir.resolve("settlement.json");
    Files.writeString(json, "{\"rows\": []}\n");
    Path noAmount = dir.resolve("no-amount.csv");
    Files.writeString(noAmount, "settlement_id,provider_reference,currency,settled_at\ns1,ch_1,EUR,2026-01-01\n");
    Path empty = dir.resolve("empty.csv");
    Files.writeString(empty, "");
    Map<String[], String> cases = new java.util.LinkedHashMap<>();
    cases.put(new String[] {"--settlement", png.toString()}, "not a CSV text file");
    cases.put(new String[] {"--settlement", json.toString()}, "missing required column(s)");
    cases.put(new String[] {"--settlement", noAmount.toString()}, "missing required column(s) amount");
    cases.put(new String[] {"--settlement", empty.toString()}, "is empty");
    cases.put(new String[] {"--settlement", dir.resolve("nope.csv").toString()}, "no such file");
    cases.put(new String[] {"--settlement", noAmount.toString(), "--format", "xml"}, "--format must be json, csv or html");
    cases.put(new String[] {"--settlement", noAmount.toString(), "--from", "last tuesday"}, "--from: 'last tuesday'");
    cases.put(new String[] {}, "Missing required option: '--settlement=FILE'");
    Path longLine = dir.resolve("long-line.csv");
    Files.writeString(longLine, "settlement_id,provider_reference,amount,currency,settled_at\ns1,\"" + "x".repeat(1 << 21) + "\n");
    cases.put(new String[] {"--settlement", longLine.toString(), "--merchant-prefix", "rt_no_such_"},
        longLine + " line 2: a line longer than 1048576 characters");
    for (Map.Entry<String[], String> c : cases.entrySet()) {
      String[] args = new String[c.getKey().length + 1];
      args[0] = "reconcile";
      System.arraycopy(c.getKey(), 0, args, 1, c.getKey().length);
      LedgerFixture.Cli cli = LedgerFixture.cli(args);
      assertThat(cli.status()).as(String.join(" ", args)).isEqualTo(2);
      assertThat(cli.err().strip()).as(String.join(" ", args)).startsWith("idemgate: ").contains(c.getValue())
          .doesNotContain("\n").doesNotContain("Exception");
    }
  }

  @Test
  @DisplayName("a line longer than 1 MiB far down the file is refused with exit 2 and its line before a run is stored, "
      + "not recorded as a FAILED run")
  void overlongRecordRefusedBeforeARun() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(5));
      String p = ledger.prefix;
      StringBuilder csv = new StringBuilder(HEADER);
      for (int i = 0; i < 1_000; i++) {
        csv.append(row("s" + i, p + "ch_" + i, null, ledger.merchant("m1"), 1_000, "EUR", "settled", base));
      }
      csv.append("s_last,\"").append("x".repeat((1 << 20) + 10)).append('\n');
      Path file = dir.resolve(p + "runaway.csv");
      Files.writeString(file, csv);

      LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
          "--out", dir.resolve("runaway.json").toString());

      assertThat(cli.status()).as(cli.err()).isEqualTo(2);
      assertThat(cli.err().strip()).isEqualTo("idemgate: " + file + " line 1002: a line longer than 1048576 characters; "
          + "nothing was run");
      assertThat(count(ledger.connection, "SELECT count(*) FROM idemgate.reconciliation_runs WHERE settlement_file = ?",
          file.getFileName().toString())).as("runs stored").isZero();
    }
  }

  @Test
  @DisplayName("a CR-only file (old Mac, spreadsheet export) is reconciled row by row, and a quoted field left open "
      + "costs only its own line: the rows after it, more than 1 MiB of them, are read and matched")
  void crOnlyFileWithAnUnclosedQuote() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(5));
      String p = ledger.prefix;
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER.replace('\n', '\r'));
      csv.append("s_open,\"").append(p).append("ch_open,,").append(m1).append(",1000,EUR,settled,").append(base).append('\r');
      for (int i = 0; i < 20_000; i++) { // another merchant's rows, past the 1 MiB record limit
        csv.append(row("s_other" + i, "ch_other" + i, null, "other_merchant", 100, "EUR", "settled", base).replace('\n', '\r'));
      }
      for (int i = 0; i < 3; i++) {
        ledger.payment("m1", 1_000 + i, "EUR", "succeeded", p + "ch_" + i, base.minus(Duration.ofHours(1)));
        csv.append(row("s" + i, p + "ch_" + i, null, m1, 1_000 + i, "EUR", "settled", base).replace('\n', '\r'));
      }
      assertThat(csv.length()).isGreaterThan(1 << 20);
      Path file = dir.resolve(p + "mac.csv");
      Files.writeString(file, csv);
      Path report = dir.resolve("mac.json");

      LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
          "--out", report.toString());

      assertThat(cli.status()).as(cli.err()).isZero();
      assertThat(cli.err()).contains(file + " line 2: a quoted field opened here is not closed within 1048576 characters "
          + "(skipped)");
      JsonObject rows = LedgerFixture.readJson(report).getJsonObject("summary").getJsonObject("rows");
      assertThat(rows.getLong("malformed")).isEqualTo(1);
      assertThat(rows.getLong("matched")).isEqualTo(3);
      assertThat(rows.getLong("read")).isEqualTo(20_004);
    }
  }

  @Test
  @DisplayName("--provider that no column_map names and no payment has (a typo, or '') is refused with exit 2 and the "
      + "providers known, before a run is stored; the same file without --provider matches its rows")
  void unknownProviderIsRefused() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(5));
      String p = ledger.prefix;
      ledger.payment("m1", 10_000, "EUR", "succeeded", p + "ch_1", base); // the simulator's
      Path file = dir.resolve(p + "typo.csv");
      Files.writeString(file, HEADER + row("s1", p + "ch_1", null, ledger.merchant("m1"), 10_000, "EUR", "settled",
          base.plus(Duration.ofHours(4))));
      Path report = dir.resolve("typo.json");

      for (String typo : List.of(p + "nosuch", "", " ")) {
        LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
            "--provider", typo, "--out", report.toString());

        assertThat(cli.status()).as(cli.err()).isEqualTo(2);
        assertThat(cli.err().strip()).as(cli.err()).startsWith("idemgate: --provider ")
            .contains(typo.isBlank() ? "--provider is empty" : "'" + typo + "' names no provider reconciliation knows")
            .contains("the ledger has ").contains("simulator").contains("column_map has acme")
            .contains("Leave --provider out").doesNotContain("\n");
        assertThat(report).doesNotExist();
        assertThat(count(ledger.connection, "SELECT count(*) FROM idemgate.reconciliation_runs WHERE settlement_file = ?",
            file.getFileName().toString())).as("runs stored").isZero();
      }

      LedgerFixture.Cli all = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
          "--out", report.toString());
      assertThat(all.status()).as(all.err()).isZero();
      assertThat(LedgerFixture.readJson(report).getJsonObject("summary").getJsonObject("rows").getLong("matched"))
          .isEqualTo(1);

      Path demo = dir.resolve("demo.csv");
      LedgerFixture.Cli demoCli = LedgerFixture.cli("settlement-demo", "--out", demo.toString(), "--merchant-prefix", p,
          "--provider", p + "nosuch");
      assertThat(demoCli.status()).as(demoCli.err()).isEqualTo(2);
      assertThat(demoCli.err()).contains("'" + p + "nosuch' names no provider reconciliation knows");
      assertThat(demo).as("no empty settlement file left to reconcile").doesNotExist();
    }
  }

  @Test
  @DisplayName("a provider named under column_map is reconciled although the ledger has no payment of it yet")
  void providerKnownByItsColumnMapOnly() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      String p = ledger.prefix;
      String fresh = p + "newacquirer";
      Path settings = dir.resolve("reconciliation.yaml");
      Files.writeString(settings, "column_map:\n  " + fresh + ": {}\n");
      Path file = dir.resolve(p + "fresh.csv");
      Instant settled = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(3));
      Files.writeString(file, HEADER + row("s1", p + "ch_1", null, ledger.merchant("m1"), 10_000, "EUR", "settled", settled));
      Path report = dir.resolve("fresh.json");

      LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
          "--provider", fresh, "--reconciliation-config", settings.toString(), "--out", report.toString());

      assertThat(cli.status()).as(cli.err()).isZero();
      JsonObject json = LedgerFixture.readJson(report);
      assertThat(json.getJsonObject("run").getString("provider")).isEqualTo(fresh);
      assertThat(json.getJsonObject("summary").getJsonObject("by_category").getLong("ORPHAN_AT_PROVIDER")).isEqualTo(1);
    }
  }

  @Test
  @DisplayName("an --out that cannot be written (no such directory, a directory, under a file) is refused with exit 2 "
      + "and the reason before a run is stored; settlement-demo's too")
  void unwritableOutIsRefusedFirst() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      String p = ledger.prefix;
      Path file = dir.resolve(p + "out.csv");
      Files.writeString(file, HEADER + row("s1", p + "ch_1", null, ledger.merchant("m1"), 10_000, "EUR", "settled",
          Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(3))));
      Path aFile = dir.resolve("plain.txt");
      Files.writeString(aFile, "x");
      Map<Path, String> cases = new java.util.LinkedHashMap<>();
      cases.put(dir.resolve("nonexistent/dir/r.json"), "no such directory: " + dir.resolve("nonexistent/dir"));
      cases.put(dir, "is a directory");
      cases.put(aFile.resolve("r.json"), "not a directory: " + aFile);
      for (Map.Entry<Path, String> c : cases.entrySet()) {
        LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
            "--out", c.getKey().toString());
        assertThat(cli.status()).as(cli.err()).isEqualTo(2);
        assertThat(cli.err().strip()).as(cli.err()).isEqualTo("idemgate: --out " + c.getKey() + ": " + c.getValue()
            + "; nothing was run");

        LedgerFixture.Cli demo = LedgerFixture.cli("settlement-demo", "--merchant-prefix", p, "--out", c.getKey().toString());
        assertThat(demo.status()).as(demo.err()).isEqualTo(2);
        assertThat(demo.err().strip()).as(demo.err()).isEqualTo("idemgate: --out " + c.getKey() + ": " + c.getValue()
            + "; nothing was written");
      }
      assertThat(count(ledger.connection, "SELECT count(*) FROM idemgate.reconciliation_runs WHERE settlement_file = ?",
          file.getFileName().toString())).as("runs stored").isZero();

      Path existing = dir.resolve("existing.json");
      Files.writeString(existing, "kept until the report replaces it");
      LedgerFixture.Cli ok = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", p,
          "--out", existing.toString());
      assertThat(ok.status()).as(ok.err()).isZero();
      assertThat(LedgerFixture.readJson(existing).getJsonObject("summary").getLong("total")).isEqualTo(1);
    }
  }

  @Test
  @DisplayName("the report's open figures count a payment's money once when two discrepancies concern it, and leave "
      + "out a discrepancy resolved after the run, which the JSON report still lists as resolved; the HTML table "
      + "numbers the open ones shown 1, 2, 3… without a gap, each with its id")
  void openFiguresCountMoneyOnceAndLeaveOutResolved() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(6));
      String p = ledger.prefix;
      String paidTwice = overlaps(ledger, base);
      JsonObject found = reconcile(dir.resolve("overlap.csv"), overlapFile(ledger, base), p);
      JsonObject summary = found.getJsonObject("summary");
      assertThat(summary.getLong("total")).as(found.getJsonArray("discrepancies").encode()).isEqualTo(6);

      String runId = found.getJsonObject("run").getString("id");
      JsonObject duplicate = found.getJsonArray("discrepancies").stream().map(JsonObject.class::cast)
          .filter(d -> d.getString("category").equals("DUPLICATE_CHARGE")).findFirst().orElseThrow();
      assertThat(duplicate.getString("payment_id")).isEqualTo(paidTwice);
      try (Connection c = Jdbc.connect(TestGateway.pgUrl())) {
        assertThat(ReconciliationStore.resolve(c, runId, duplicate.getLong("id"), "refunded R-1"))
            .isInstanceOf(ReconciliationStore.Resolution.Resolved.class);
        ReconciliationRun run = ReconciliationStore.run(c, runId).orElseThrow();
        java.io.StringWriter json = new java.io.StringWriter();
        ReportWriter.write(ReportFormat.JSON, c, run, json);
        java.io.StringWriter html = new java.io.StringWriter();
        ReportWriter.write(ReportFormat.HTML, c, run, html);

        String page = html.toString();
        // EUR 30 + 50 (orphan): the difference and the ledger's EUR 30 are the same money again, the duplicate is
        // resolved. Not the sum of every category's money, the duplicate's included: EUR 100 + 30 + 70 + 30 + 50.
        assertThat(page).contains("<div class=\"n stake\">EUR 80.00<br>USD 30.00</div>")
            .contains("<div class=\"n\">5</div><div class=\"l\">discrepancies to look at (1 more resolved)</div>");
        // The resolved duplicate is not among those to act on, but listed as resolved, with its note.
        assertThat(page.substring(page.indexOf("<h2>Act on these first</h2>"), page.indexOf("<h2>Resolved</h2>")))
            .doesNotContain("s_dup2");
        assertThat(page.substring(page.indexOf("<h2>Resolved</h2>"), page.indexOf("<h2>What the categories mean</h2>")))
            .contains("s_dup2", "refunded R-1");

        JsonObject after = new JsonObject(json.toString());
        JsonObject open = after.getJsonObject("summary").getJsonObject("open");
        assertThat(after.getJsonObject("summary").getLong("total")).isEqualTo(6);
        assertThat(after.getJsonObject("summary").getLong("resolved")).isEqualTo(1);
        assertThat(open.getLong("total")).isEqualTo(5);
        assertThat(open.getJsonObject("by_category").getLong("DUPLICATE_CHARGE")).isZero();
        assertThat(open.getJsonObject("value_at_stake").getMap())
            .containsExactlyInAnyOrderEntriesOf(Map.of("EUR", 8_000, "USD", 3_000));
        assertThat(after.getJsonArray("discrepancies").stream().map(JsonObject.class::cast)
            .filter(d -> d.getLong("id").equals(duplicate.getLong("id"))).findFirst().orElseThrow().getString("status"))
            .isEqualTo("resolved");

        // The table numbers the open discrepancies it shows 1 to 5, with no gap where the resolved one
        // ranked, and names each by its id, in the JSON report's order.
        String table = page.substring(page.indexOf("<h2>Act on these first</h2>"), page.indexOf("<h2>Resolved</h2>"));
        List<Long> numbers = new ArrayList<>();
        List<Long> ids = new ArrayList<>();
        Matcher shown = Pattern.compile("<tr><td class=\"num\">(\\d+)</td>(?:<td class=\"num mono\">(\\d+)</td>)?")
            .matcher(table);
        while (shown.find()) {
          numbers.add(Long.parseLong(shown.group(1)));
          ids.add(shown.group(2) == null ? null : Long.parseLong(shown.group(2)));
        }
        assertThat(numbers).as(table).containsExactly(1L, 2L, 3L, 4L, 5L);
        assertThat(ids).containsExactlyElementsOf(after.getJsonArray("discrepancies").stream().map(JsonObject.class::cast)
            .filter(d -> d.getString("status").equals("open")).map(d -> d.getLong("id")).toList());
      }
    }
  }

  @Test
  @DisplayName("the list of runs reads a run's open figures from the totals it stored less what is resolved, "
      + "the same as the report's, whichever discrepancy of a pair is resolved; a run from before those totals "
      + "were stored is read whole; one that has no summary has no figures")
  void listedFiguresAreTheReportsFromTheStoredTotals() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(6));
      overlaps(ledger, base);
      JsonObject found = reconcile(dir.resolve("overlap.csv"), overlapFile(ledger, base), ledger.prefix);
      String runId = found.getJsonObject("run").getString("id");
      // Found: EUR 100 (duplicate) + 30 (declined, settled for less) + 50 (orphan), and the pair settled in
      // dollars as its first discrepancy by priority (USD 30 or EUR 30): each pair's money once.
      JsonObject foundAtStake = found.getJsonObject("summary").getJsonObject("value_at_stake");
      assertThat(foundAtStake.getLong("EUR", 0L) + foundAtStake.getLong("USD", 0L)).isEqualTo(21_000);
      List<JsonObject> discrepancies = found.getJsonArray("discrepancies").stream().map(JsonObject.class::cast).toList();
      try (Connection c = Jdbc.connect(TestGateway.pgUrl())) {
        assertThat(listed(c, runId)).isEqualTo(ReconciliationStore.currentFigures(c, runId));
        // One at a time: the discrepancy a pair's money counts as (its AMOUNT_MISMATCH counts now), a
        // duplicate, a pair's other discrepancy (its first by priority still counts), then the rest;
        // each time the list agrees with the report's figures.
        List<JsonObject> order = new ArrayList<>();
        order.add(pair(discrepancies, "s_declined_less").stream()
            .filter(d -> d.getString("category").equals("STATUS_MISMATCH")).findFirst().orElseThrow());
        order.add(discrepancies.stream().filter(d -> d.getString("category").equals("DUPLICATE_CHARGE")).findFirst().orElseThrow());
        order.add(pair(discrepancies, "s_declined_usd").get(1));
        discrepancies.stream().filter(d -> !order.contains(d)).forEach(order::add);
        for (JsonObject d : order) {
          assertThat(ReconciliationStore.resolve(c, runId, d.getLong("id"), "checked"))
              .isInstanceOf(ReconciliationStore.Resolution.Resolved.class);
          assertThat(listed(c, runId)).as("after resolving %s", d.getString("category"))
              .isEqualTo(ReconciliationStore.currentFigures(c, runId));
          if (d == order.get(0)) {
            // The declined payment settled for less: its EUR 70 difference is what of that pair is open now.
            assertThat(listed(c, runId).getJsonObject("open").getJsonObject("value_at_stake").getLong("EUR"))
                .isEqualTo(foundAtStake.getLong("EUR") - 3_000 + 7_000);
          }
        }
        JsonObject none = listed(c, runId);
        assertThat(none.getLong("resolved")).isEqualTo(discrepancies.size());
        assertThat(none.getJsonObject("open").getJsonObject("value_at_stake").isEmpty()).isTrue();

        ReconciliationRun run = ReconciliationStore.run(c, runId).orElseThrow();
        JsonObject olderSummary = run.summary().copy();
        olderSummary.remove("value_at_stake");
        ReconciliationRun older = new ReconciliationRun(run.id(), run.source(), run.status(), run.settlementFile(),
            run.provider(), run.merchantPrefix(), run.windowFrom(), run.windowTo(), run.settlementLagSeconds(),
            run.asOf(), olderSummary, run.malformedRows(), run.error(), run.startedAt(), run.finishedAt());
        ReconciliationRun running = new ReconciliationRun("rec_0", "api", "RUNNING", "x.csv", null, null, null, null,
            0, run.asOf(), null, new JsonArray(), null, run.startedAt(), null);
        assertThat(ReconciliationStore.listedFigures(c, List.of(older, running)))
            .containsOnlyKeys(runId).containsEntry(runId, ReconciliationStore.currentFigures(c, runId));
      }
    }
  }

  @Test
  @DisplayName("the list of runs reads, of a run's discrepancies, only the resolved ones and the others of their pairs, "
      + "not the thousands still open")
  void listedFiguresReadOnlyTheResolved() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant settled = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(6));
      String m1 = ledger.merchant("m1");
      StringBuilder csv = new StringBuilder(HEADER);
      int orphans = 3_000;
      for (int i = 0; i < orphans; i++) {
        csv.append(row(ledger.prefix + "s_" + i, ledger.prefix + "ch_" + i, null, m1, 100 + i, "EUR", "settled", settled));
      }
      JsonObject found = reconcile(dir.resolve("orphans.csv"), csv.toString(), ledger.prefix);
      String runId = found.getJsonObject("run").getString("id");
      assertThat(found.getJsonObject("summary").getLong("total")).isEqualTo(orphans);
      long resolved = found.getJsonArray("discrepancies").getJsonObject(0).getLong("id");
      try (Connection c = Jdbc.connect(TestGateway.pgUrl())) {
        assertThat(ReconciliationStore.resolve(c, runId, resolved, "refunded"))
            .isInstanceOf(ReconciliationStore.Resolution.Resolved.class);
        try (var s = c.createStatement()) {
          s.execute("ANALYZE idemgate.reconciliation_discrepancies"); // plans as a table long in use has them
        }
        ReconciliationRun run = ReconciliationStore.run(c, runId).orElseThrow();
        c.setAutoCommit(false);
        // Within one transaction the backend's table counters only grow (they are flushed, with those of
        // earlier transactions not flushed yet, after it ends): their growth is what the list read.
        long before = rowsRead(c);
        JsonObject figures = ReconciliationStore.listedFigures(c, List.of(run)).get(runId);
        // A handful: the orphan resolved, read as resolved and as its own pair (alone in it), and at most
        // the version its resolution left that is not pruned yet; never the run's thousands.
        assertThat(rowsRead(c) - before).as("rows read of a run of %d", orphans).isLessThan(10);
        c.rollback();
        assertThat(figures.getLong("resolved")).isEqualTo(1);
        assertThat(figures).isEqualTo(ReconciliationStore.currentFigures(c, runId));
      }
    }
  }

  /** Rows of discrepancies this connection has read and not yet reported to the statistics. */
  private static long rowsRead(Connection c) throws Exception {
    try (var s = c.createStatement(); ResultSet rs = s.executeQuery("""
        SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables
        WHERE relid = 'idemgate.reconciliation_discrepancies'::regclass""")) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private static JsonObject listed(Connection c, String runId) throws Exception {
    return ReconciliationStore.listedFigures(c, List.of(ReconciliationStore.run(c, runId).orElseThrow())).get(runId);
  }

  /** The two discrepancies of one payment and settlement row, by priority. */
  private static List<JsonObject> pair(List<JsonObject> discrepancies, String settlementId) {
    List<JsonObject> pair = discrepancies.stream().filter(d -> settlementId.equals(d.getString("settlement_id"))).toList();
    assertThat(pair).as(settlementId).hasSize(2);
    return pair;
  }

  /**
   * A day of payments whose discrepancies overlap: four settled as charged, a payment declined here and settled for
   * less, one declined and settled in dollars, one settled twice and a settlement of no payment. Returns the id of the
   * payment settled twice.
   */
  private static String overlaps(LedgerFixture ledger, Instant base) throws Exception {
    String p = ledger.prefix;
    for (int i = 0; i < 4; i++) {
      ledger.payment("m1", 1_000 + i, "EUR", "succeeded", p + "ch_ok" + i, base.plusSeconds(60L * i));
    }
    ledger.payment("m1", 10_000, "EUR", "declined", p + "ch_declined_less", base);
    ledger.payment("m1", 3_000, "EUR", "declined", p + "ch_declined_usd", base);
    return ledger.payment("m1", 10_000, "EUR", "succeeded", p + "ch_dup", base);
  }

  /** The settlement file of {@link #overlaps}. */
  private static String overlapFile(LedgerFixture ledger, Instant base) {
    Instant settled = base.plus(Duration.ofHours(6));
    String p = ledger.prefix;
    String m1 = ledger.merchant("m1");
    StringBuilder csv = new StringBuilder(HEADER);
    for (int i = 0; i < 4; i++) {
      csv.append(row("s_ok" + i, p + "ch_ok" + i, null, m1, 1_000 + i, "EUR", "settled", settled));
    }
    // Declined here, settled there for less: STATUS_MISMATCH (EUR 30) and AMOUNT_MISMATCH (EUR 70), one EUR 30 at
    // stake: the money taken that the ledger says was not. The difference from the ledger's amount, though larger and
    // ranked first, is no money moved.
    csv.append(row("s_declined_less", p + "ch_declined_less", null, m1, 3_000, "EUR", "settled", settled));
    // Declined here, settled in dollars: STATUS_MISMATCH (USD 30) and CURRENCY_MISMATCH (EUR 30), one USD 30 at stake.
    csv.append(row("s_declined_usd", p + "ch_declined_usd", null, m1, 3_000, "USD", "settled", settled));
    csv.append(row("s_dup1", p + "ch_dup", null, m1, 10_000, "EUR", "settled", settled));
    csv.append(row("s_dup2", p + "ch_dup", null, m1, 10_000, "EUR", "settled", settled.plus(Duration.ofHours(1))));
    // Its settlement_id is the test's own: a resolution carries over to any later run that finds the same
    // orphan (no payment, same settlement_id, amount and status), and a test resolves them all.
    csv.append(row(p + "s_orphan", p + "ch_orphan", null, m1, 5_000, "EUR", "settled", settled));
    return csv.toString();
  }

  @Test
  @DisplayName("the Java and SQL reference normalisations agree")
  void referenceNormalisation() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture();
         PreparedStatement s = ledger.connection.prepareStatement("SELECT idemgate.recon_ref_norm(?)")) {
      for (String ref : List.of("ch_sim_12", "CH-SIM-12", " py_3MtwBwLkdIwHu7ix28a3tqPa ", "ref/2026.01:x", "ümlaut-Ä1", "--")) {
        s.setString(1, ref);
        try (ResultSet rs = s.executeQuery()) {
          rs.next();
          String sql = rs.getString(1);
          assertThat(sql == null || sql.isEmpty() ? null : sql).as(ref).isEqualTo(SettlementReader.normalizeReference(ref));
        }
      }
    }
  }

  private static int lineOf(CharSequence csv, String settlementId) {
    String[] lines = csv.toString().split("\n");
    for (int i = 0; i < lines.length; i++) {
      if (lines[i].startsWith(settlementId + ",")) {
        return i + 1;
      }
    }
    throw new AssertionError(settlementId);
  }

  private static long count(Connection c, String sql, String param) throws Exception {
    try (PreparedStatement s = c.prepareStatement(sql)) {
      s.setString(1, param);
      try (ResultSet rs = s.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }
}
