package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import dev.idemgate.http.Problems;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
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
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** POST /admin/reconciliations and GET /admin/reconciliations/{id} on the management port. */
class ReconciliationApiIT {
  private static TestGateway gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start();
    http = new Http();
  }

  @AfterAll
  static void stop() {
    http.close();
    gateway.close();
  }

  private static Map<String, String> admin() {
    return Map.of("Authorization", "Bearer " + TestGateway.ADMIN_TOKEN, "Content-Type", "text/csv");
  }

  private static Http.Reply upload(String query, String csv) {
    return http.send(HttpMethod.POST, gateway.config().managementPort(), "/admin/reconciliations" + query, admin(),
        Buffer.buffer(csv));
  }

  /** Merchant shop's payments of the upload tests: ch_1, which the file settles twice, and ch_2, which it never settles. */
  private record ShopPayments(String settledTwice, String neverSettled) {}

  /** Merchant shop's three payments: ch_1 EUR 25.00 at {@code base}, ch_2 EUR 40.00 six hours later, ch_3 EUR 9.00 three days later. */
  private static ShopPayments shopPayments(LedgerFixture ledger, Instant base) throws Exception {
    String settledTwice = ledger.payment("shop", 2_500, "EUR", "succeeded", ledger.prefix + "ch_1", base);
    String neverSettled = ledger.payment("shop", 4_000, "EUR", "succeeded", ledger.prefix + "ch_2", base.plus(Duration.ofHours(6)));
    ledger.payment("shop", 900, "EUR", "succeeded", ledger.prefix + "ch_3", base.plus(Duration.ofDays(3)));
    return new ShopPayments(settledTwice, neverSettled);
  }

  /** One settlement line of merchant shop, in EUR. */
  /**
   * Uploads a day of the shop's settlements, ch_1 settled twice and ch_3 once (ch_2 never), as
   * {@code day.csv}, and waits for its run to complete; returns the run's id.
   */
  private static String reconcileDuplicateDay(LedgerFixture ledger, Instant base) throws InterruptedException {
    String csv = "settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n"
        + shopRow(ledger, "s1", "ch_1", 2_500, base.plus(Duration.ofHours(5)))
        + shopRow(ledger, "s2", "ch_1", 2_500, base.plus(Duration.ofHours(9)))
        + shopRow(ledger, "s4", "ch_3", 900, base.plus(Duration.ofDays(3)).plusSeconds(60));
    return awaitCompleted(upload("?merchant_prefix=" + ledger.prefix + "&name=day.csv", csv).json().getString("id"))
        .getJsonObject("run").getString("id");
  }

  private static String shopRow(LedgerFixture ledger, String settlementId, String charge, long amount, Instant settledAt) {
    return settlementId + "," + ledger.prefix + charge + "," + ledger.merchant("shop") + "," + amount + ",EUR," + settledAt + "\n";
  }

  @Test
  @DisplayName("an uploaded settlement file is reconciled, stored, reported in three formats, and resolvable")
  void uploadAndReport() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().minus(Duration.ofDays(5)).truncatedTo(ChronoUnit.SECONDS);
      String paid = shopPayments(ledger, base).settledTwice();
      String csv = "settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n"
          + shopRow(ledger, "s1", "ch_1", 2_500, base.plus(Duration.ofHours(5)))
          + shopRow(ledger, "s2", "ch_1", 2_500, base.plus(Duration.ofHours(9)))
          + "s3,not-a-number\n"
          // ch_2 was charged after the file's first row, and the file runs more than the settlement lag
          // past it: ch_2 should be in it.
          + shopRow(ledger, "s4", "ch_3", 900, base.plus(Duration.ofDays(3)).plusSeconds(60));

      // Rows of other merchants make the body a few MiB, so that it arrives in many chunks.
      StringBuilder body = new StringBuilder(csv);
      for (int i = 0; i < 30_000; i++) {
        body.append("x").append(i).append(",ch_x").append(i).append(",someone_else,100,EUR,").append(base).append('\n');
      }
      Http.Reply accepted = upload("?merchant_prefix=" + ledger.prefix + "&name=day.csv", body.toString());

      assertThat(accepted.status()).as(accepted.body()).isEqualTo(202);
      String id = accepted.json().getString("id");
      assertThat(accepted.header("Location")).isEqualTo("/admin/reconciliations/" + id);
      JsonObject report = awaitCompleted(id);
      assertThat(report.getJsonObject("run").getString("settlement_file")).isEqualTo("day.csv");
      assertThat(report.getJsonObject("summary").getJsonObject("by_category").getLong("DUPLICATE_CHARGE")).isEqualTo(1);
      assertThat(report.getJsonObject("summary").getJsonObject("by_category").getLong("MISSING_IN_SETTLEMENT")).isEqualTo(1);
      assertThat(report.getJsonObject("summary").getJsonObject("rows").getLong("read")).isEqualTo(30_004);
      assertThat(report.getJsonObject("summary").getJsonObject("rows").getLong("outside_merchant_filter")).isEqualTo(30_000);
      assertThat(report.getJsonArray("malformed_rows").getJsonObject(0).getLong("line")).isEqualTo(4);
      JsonObject duplicate = report.getJsonArray("discrepancies").getJsonObject(0);
      assertThat(duplicate.getString("category")).isEqualTo("DUPLICATE_CHARGE");
      assertThat(duplicate.getString("payment_id")).isEqualTo(paid);

      int port = gateway.config().managementPort();
      Http.Reply html = http.get(port, "/admin/reconciliations/" + id + "?format=html", TestGateway.ADMIN_TOKEN);
      assertThat(html.header("Content-Type")).startsWith("text/html");
      assertThat(html.body()).contains("<svg");
      Http.Reply csvReport = http.get(port, "/admin/reconciliations/" + id + "?format=csv", TestGateway.ADMIN_TOKEN);
      assertThat(csvReport.body().lines().count()).isEqualTo(3);

      Http.Reply resolved = http.send(HttpMethod.POST, port, "/admin/reconciliations/" + id + "/discrepancies/"
          + duplicate.getLong("id") + "/resolve", admin(), Buffer.buffer("{\"note\":\"refunded R-77\"}"));
      assertThat(resolved.status()).isEqualTo(200);
      JsonObject after = http.get(port, "/admin/reconciliations/" + id, TestGateway.ADMIN_TOKEN).json();
      assertThat(after.getJsonArray("discrepancies").getJsonObject(0).getString("status")).isEqualTo("resolved");
      assertThat(http.get(port, "/admin/reconciliations", TestGateway.ADMIN_TOKEN).json().getJsonArray("runs").encode())
          .contains(id);
    }
  }

  @Test
  @DisplayName("the list of runs gives each run's figures as its report does: total and by_category as found, "
      + "resolved and open as they are when the list is asked, so a resolution since the run counts")
  void listReadsOpenAndResolvedWhenAsked() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().minus(Duration.ofDays(5)).truncatedTo(ChronoUnit.SECONDS);
      String paid = shopPayments(ledger, base).settledTwice();
      int port = gateway.config().managementPort();
      String id = reconcileDuplicateDay(ledger, base);

      JsonObject before = listed(id).getJsonObject("summary");
      assertThat(before.getLong("total")).isEqualTo(2);
      assertThat(before.getLong("resolved")).isZero();
      assertThat(before.getJsonObject("open").getLong("total")).isEqualTo(2);

      // The duplicate (EUR 25.00, settled twice) is refunded and resolved; the missing EUR 40.00 stays open.
      JsonObject duplicate = reportOf(id).getJsonArray("discrepancies").stream().map(JsonObject.class::cast)
          .filter(d -> d.getString("category").equals("DUPLICATE_CHARGE")).findFirst().orElseThrow();
      assertThat(duplicate.getString("payment_id")).isEqualTo(paid);
      assertThat(http.send(HttpMethod.POST, port, "/admin/reconciliations/" + id + "/discrepancies/"
          + duplicate.getLong("id") + "/resolve", admin(), Buffer.buffer("{\"note\":\"refunded R-79\"}")).status())
          .isEqualTo(200);

      JsonObject summary = listed(id).getJsonObject("summary");
      assertThat(summary.getLong("total")).as("found by the run").isEqualTo(2);
      assertThat(summary.getJsonObject("by_category").getLong("DUPLICATE_CHARGE")).as("found by the run").isEqualTo(1);
      assertThat(summary.getLong("resolved")).isEqualTo(1);
      JsonObject open = summary.getJsonObject("open");
      assertThat(open.getLong("total")).isEqualTo(1);
      assertThat(open.getJsonObject("by_category").getLong("DUPLICATE_CHARGE")).isZero();
      assertThat(open.getJsonObject("by_category").getLong("MISSING_IN_SETTLEMENT")).isEqualTo(1);
      assertThat(open.getJsonObject("value_at_stake").getMap()).containsExactlyEntriesOf(Map.of("EUR", 4_000));
      // The same figures as the report's summary, asked now.
      JsonObject reported = reportOf(id).getJsonObject("summary");
      assertThat(summary.getLong("resolved")).isEqualTo(reported.getLong("resolved"));
      assertThat(open).isEqualTo(reported.getJsonObject("open"));
    }
  }

  @Test
  @DisplayName("the list of runs shows each run's warnings and how many of its lines were malformed, as its report "
      + "does, so that the runs that had problems are seen from the list")
  void listShowsWarningsAndMalformedLines() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().minus(Duration.ofDays(10)).truncatedTo(ChronoUnit.SECONDS);
      ledger.payment("shop", 2_500, "EUR", "succeeded", ledger.prefix + "ch_1", base);
      // Settled 4 days after its charge, past the 2-day lag: warned about. Line 3 is malformed.
      String csv = "settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n"
          + shopRow(ledger, "s1", "ch_1", 2_500, base.plus(Duration.ofDays(4)))
          + "s2,not-a-number\n";
      String id = awaitCompleted(upload("?merchant_prefix=" + ledger.prefix, csv).json().getString("id"))
          .getJsonObject("run").getString("id");
      JsonObject reported = reportOf(id).getJsonObject("summary");
      assertThat(reported.getJsonArray("warnings")).hasSize(1);

      JsonObject summary = listed(id).getJsonObject("summary");
      assertThat(summary.getJsonArray("warnings")).as(summary.encode()).isEqualTo(reported.getJsonArray("warnings"));
      assertThat(summary.getJsonObject("rows").getLong("malformed")).isEqualTo(1);
      assertThat(summary.getJsonObject("rows")).isEqualTo(reported.getJsonObject("rows"));
    }
  }

  @Test
  @DisplayName("a discrepancy is resolved once, with a note: a second resolution gets 409 naming when and with what "
      + "note it was resolved, and the first note stays; a missing or empty note is 400 naming the fault; the JSON, "
      + "CSV and HTML reports show each resolution's note and time")
  void aResolutionIsKeptAndReported() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().minus(Duration.ofDays(5)).truncatedTo(ChronoUnit.SECONDS);
      shopPayments(ledger, base);
      int port = gateway.config().managementPort();
      String id = reconcileDuplicateDay(ledger, base);
      long duplicate = discrepancyOf(reportOf(id), "DUPLICATE_CHARGE").getLong("id");
      String path = "/admin/reconciliations/" + id + "/discrepancies/" + duplicate + "/resolve";

      Map<String, String> faults = new java.util.LinkedHashMap<>();
      faults.put("", "the body is empty");
      faults.put("{}", "note is missing");
      faults.put("{\"note\":null}", "note is missing");
      faults.put("{\"note\":\"\"}", "note is empty");
      faults.put("{\"note\":\" \\n \"}", "note is empty");
      faults.put("{\"note\":42}", "note must be text");
      faults.put("not json", "the body is not JSON");
      faults.put("{\"note\":\"refunded\",\"ticket\":42}", "ticket is no member of a resolution");
      faults.put("{\"note\":\"a\",\"note\":\"b\"}", "member note is sent twice");
      for (Map.Entry<String, String> fault : faults.entrySet()) {
        Http.Reply refused = http.send(HttpMethod.POST, port, path, admin(), Buffer.buffer(fault.getKey()));
        assertThat(refused.status()).as(fault.getKey()).isEqualTo(400);
        assertThat(refused.json().getString("detail")).as(fault.getKey()).startsWith(fault.getValue())
            .contains("send {\"note\":");
      }
      assertThat(discrepancyOf(reportOf(id), "DUPLICATE_CHARGE").getString("status")).as("nothing marked").isEqualTo("open");

      Http.Reply first = http.send(HttpMethod.POST, port, path, admin(),
          Buffer.buffer("{\"note\":\"refunded duplicate, ticket 42\"}"));
      assertThat(first.status()).as(first.body()).isEqualTo(200);
      String resolvedAt = first.json().getString("resolved_at");
      assertThat(Instant.parse(resolvedAt)).isCloseTo(Instant.now(), org.assertj.core.api.Assertions.within(1, ChronoUnit.MINUTES));
      assertThat(first.json().getString("note")).isEqualTo("refunded duplicate, ticket 42");

      Http.Reply again = http.send(HttpMethod.POST, port, path, admin(), Buffer.buffer("{\"note\":\"again\"}"));
      assertThat(again.status()).as(again.body()).isEqualTo(409);
      assertThat(again.json().getString("code")).isEqualTo("conflict");
      assertThat(again.json().getString("detail")).contains(resolvedAt).contains("refunded duplicate, ticket 42")
          .contains("nothing was changed");
      assertThat(again.json().getString("resolved_at")).isEqualTo(resolvedAt);
      assertThat(again.json().getString("resolution_note")).isEqualTo("refunded duplicate, ticket 42");

      JsonObject report = reportOf(id);
      assertThat(discrepancyOf(report, "DUPLICATE_CHARGE").getJsonObject("resolution"))
          .isEqualTo(new JsonObject().put("resolved_at", resolvedAt).put("note", "refunded duplicate, ticket 42"));
      JsonObject open = discrepancyOf(report, "MISSING_IN_SETTLEMENT");
      assertThat(open.containsKey("resolution")).isTrue();
      assertThat(open.getValue("resolution")).isNull();

      List<String> csvLines = http.get(port, "/admin/reconciliations/" + id + "?format=csv", TestGateway.ADMIN_TOKEN).body()
          .lines().toList();
      assertThat(csvLines.get(0)).endsWith(",id,resolved_at,resolution_note");
      assertThat(csvLines).anyMatch(line -> line.endsWith("," + duplicate + "," + resolvedAt + ",\"refunded duplicate, ticket 42\""));
      assertThat(csvLines).anyMatch(line -> line.endsWith("," + open.getLong("id") + ",,"));

      String html = http.get(port, "/admin/reconciliations/" + id + "?format=html", TestGateway.ADMIN_TOKEN).body();
      assertThat(html).contains("refunded duplicate, ticket 42").contains(HtmlReport.time(Instant.parse(resolvedAt)));
    }
  }

  /** The report's one discrepancy of {@code category}. */
  private static JsonObject discrepancyOf(JsonObject report, String category) {
    return report.getJsonArray("discrepancies").stream().map(JsonObject.class::cast)
        .filter(d -> d.getString("category").equals(category)).findFirst().orElseThrow();
  }

  /** The run's entry in GET /admin/reconciliations. */
  private static JsonObject listed(String id) {
    return http.get(gateway.config().managementPort(), "/admin/reconciliations", TestGateway.ADMIN_TOKEN).json()
        .getJsonArray("runs").stream().map(JsonObject.class::cast).filter(run -> run.getString("id").equals(id))
        .findFirst().orElseThrow(() -> new AssertionError("run " + id + " is not listed"));
  }

  private static JsonObject reportOf(String id) {
    return http.get(gateway.config().managementPort(), "/admin/reconciliations/" + id, TestGateway.ADMIN_TOKEN).json();
  }

  @Test
  @DisplayName("a discrepancy resolved in one run is resolved in the next run of the same file, its note naming that run; "
      + "the others stay open")
  void resolutionsCarryOver() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().minus(Duration.ofDays(5)).truncatedTo(ChronoUnit.SECONDS);
      ShopPayments shop = shopPayments(ledger, base);
      String paid = shop.settledTwice();
      String missing = shop.neverSettled();
      String csv = "settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n"
          + shopRow(ledger, "s1", "ch_1", 2_500, base.plus(Duration.ofHours(5)))
          + shopRow(ledger, "s2", "ch_1", 2_500, base.plus(Duration.ofHours(9)))
          + shopRow(ledger, "s4", "ch_3", 900, base.plus(Duration.ofDays(3)).plusSeconds(60));
      String query = "?merchant_prefix=" + ledger.prefix + "&name=day.csv";
      int port = gateway.config().managementPort();

      JsonObject first = awaitCompleted(upload(query, csv).json().getString("id"));
      assertThat(first.getJsonObject("summary").getLong("resolved_earlier")).isZero();
      JsonObject duplicate = first.getJsonArray("discrepancies").stream().map(JsonObject.class::cast)
          .filter(d -> d.getString("category").equals("DUPLICATE_CHARGE")).findFirst().orElseThrow();
      assertThat(duplicate.getString("payment_id")).isEqualTo(paid);
      String firstId = first.getJsonObject("run").getString("id");
      assertThat(http.send(HttpMethod.POST, port, "/admin/reconciliations/" + firstId + "/discrepancies/"
          + duplicate.getLong("id") + "/resolve", admin(), Buffer.buffer("{\"note\":\"refunded R-78\"}")).status())
          .isEqualTo(200);

      JsonObject second = awaitCompleted(upload(query, csv).json().getString("id"));
      String secondId = second.getJsonObject("run").getString("id");
      assertThat(secondId).isNotEqualTo(firstId);
      assertThat(second.getJsonObject("summary").getLong("resolved_earlier")).isEqualTo(1);
      Map<String, String> statusByPayment = new java.util.HashMap<>();
      second.getJsonArray("discrepancies").stream().map(JsonObject.class::cast)
          .forEach(d -> statusByPayment.put(d.getString("category") + " " + d.getString("payment_id"), d.getString("status")));
      assertThat(statusByPayment).containsEntry("DUPLICATE_CHARGE " + paid, "resolved")
          .containsEntry("MISSING_IN_SETTLEMENT " + missing, "open");
      assertThat(duplicateNote(ledger, secondId)).isEqualTo("resolved in run " + firstId + ": refunded R-78");

      // A third run carries the operator's note on as it is, naming the run where it was written.
      String thirdId = awaitCompleted(upload(query, csv).json().getString("id")).getJsonObject("run").getString("id");
      assertThat(duplicateNote(ledger, thirdId)).isEqualTo("resolved in run " + firstId + ": refunded R-78");
    }
  }

  private static String duplicateNote(LedgerFixture ledger, String runId) throws java.sql.SQLException {
    try (var s = ledger.connection.prepareStatement("SELECT resolution_note FROM idemgate.reconciliation_discrepancies "
        + "WHERE run_id = ? AND category = 'DUPLICATE_CHARGE'")) {
      s.setString(1, runId);
      try (var rs = s.executeQuery()) {
        assertThat(rs.next()).isTrue();
        return rs.getString(1);
      }
    }
  }

  @Test
  @DisplayName("a report is sent from a temporary file taken out of its directory: whole, with its Content-Length, "
      + "byte for byte what the report writer writes in each format; a client that stops reading holds only that "
      + "open file, which is closed when the client goes away, no file is left behind, and past four at once a "
      + "report is refused with 429")
  void reportIsSentFromATemporaryFile() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().minus(Duration.ofDays(5)).truncatedTo(ChronoUnit.SECONDS);
      int orphans = 10_000; // about 6.5 MB of JSON: more than the loopback's socket buffers take in
      StringBuilder csv = new StringBuilder("settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n");
      for (int i = 0; i < orphans; i++) {
        csv.append("g").append(i).append(',').append(ledger.prefix).append("ghost_").append(i).append(',')
            .append(ledger.merchant("shop")).append(",1500,EUR,").append(base.plusSeconds(i)).append('\n');
      }
      Http.Reply accepted = upload("?merchant_prefix=" + ledger.prefix + "&name=ghosts.csv", csv.toString());
      assertThat(accepted.status()).as(accepted.body()).isEqualTo(202);
      String id = accepted.json().getString("id");
      awaitCompleted(id);
      long leftBefore = reportFilesLeft();

      int port = gateway.config().managementPort();
      try (Connection c = Jdbc.connect(gateway.config().pgUrl())) {
        ReconciliationRun run = ReconciliationStore.run(c, id).orElseThrow();
        for (ReportFormat format : ReportFormat.values()) {
          StringWriter expected = new StringWriter();
          ReportWriter.write(format, c, run, expected);
          String query = "?format=" + format.name().toLowerCase(Locale.ROOT);
          Http.Reply reply = http.get(port, "/admin/reconciliations/" + id + query, TestGateway.ADMIN_TOKEN);
          assertThat(reply.status()).isEqualTo(200);
          assertThat(reply.header("Content-Type")).isEqualTo(format.contentType());
          assertThat(reply.header("Content-Length")).isEqualTo(
              String.valueOf(expected.toString().getBytes(StandardCharsets.UTF_8).length));
          assertThat(reply.body()).as(format.name()).isEqualTo(expected.toString());
        }
      }

      // Clients that read the status line and then nothing: the gateway (in this JVM) holds each
      // report open, already out of the directory, until its client goes away; a fifth is refused.
      List<Socket> stalled = new ArrayList<>();
      try {
        for (int i = 0; i < ReconciliationRoutes.MAX_REPORTS_AT_ONCE; i++) {
          stalled.add(stalledReportClient(port, id));
        }
        int open = ReconciliationRoutes.MAX_REPORTS_AT_ONCE;
        Waits.eventually(Duration.ofSeconds(5), () -> openDeletedReports() == open,
            "every stalled report held open, already deleted from its directory");
        assertThat(reportFilesLeft()).isEqualTo(leftBefore);
        Http.Reply refused = http.get(port, "/admin/reconciliations/" + id, TestGateway.ADMIN_TOKEN);
        assertThat(refused.status()).isEqualTo(429);
        assertThat(refused.header("Retry-After")).isEqualTo("5");
      } finally {
        for (Socket socket : stalled) {
          socket.close();
        }
      }
      Waits.eventually(Duration.ofSeconds(5), () -> openDeletedReports() == 0, "the reports closed once the clients left");
      assertThat(reportFilesLeft()).as("temporary report files left behind").isEqualTo(leftBefore);
      // The slot is given back once the file's close has completed, a moment after the file is closed.
      Waits.eventually(Duration.ofSeconds(5),
          () -> http.get(port, "/admin/reconciliations/" + id, TestGateway.ADMIN_TOKEN).status() == 200,
          "reports are served again once the stalled clients left");
    }
  }

  @Test
  @DisplayName("past two uploads or runs under way, an upload is refused with 429 before its body is read; "
      + "once they end, uploads are taken again")
  void uploadsUnderWayAreBounded() throws Exception {
    int port = gateway.config().managementPort();
    List<Socket> halfSent = new ArrayList<>();
    try {
      for (int i = 0; i < ReconciliationRoutes.MAX_RUNS_AT_ONCE; i++) {
        // Headers and the start of a body that never ends: an upload under way.
        Socket socket = new Socket("127.0.0.1", port);
        socket.getOutputStream().write(("POST /admin/reconciliations?name=slow.csv HTTP/1.1\r\nHost: x\r\n"
            + "Authorization: Bearer " + TestGateway.ADMIN_TOKEN + "\r\nContent-Length: 100000\r\n\r\n"
            + "settlement_id,provider_reference").getBytes(StandardCharsets.US_ASCII));
        halfSent.add(socket);
      }
      // Both are taken before the third is sent: one that came after it would be the one refused.
      Waits.eventually(Duration.ofSeconds(5), () -> underWay() == ReconciliationRoutes.MAX_RUNS_AT_ONCE,
          "both uploads are under way");
      Waits.eventually(Duration.ofSeconds(5), () -> upload("?name=third.csv", "x\n").status() == 429,
          "a third upload is refused while two are under way");
      Http.Reply refused = upload("?name=third.csv", "x\n");
      assertThat(refused.header("Retry-After")).isEqualTo("30");
      assertThat(refused.json().getString("code")).isEqualTo("rate_limited");
    } finally {
      for (Socket socket : halfSent) {
        socket.close();
      }
    }
    Waits.eventually(Duration.ofSeconds(5), () -> upload("?name=later.csv", "x\n").status() != 429,
        "uploads are taken again once the others ended");
  }

  /** A client that asks for the report, reads its status line, and then reads nothing. */
  private static Socket stalledReportClient(int port, String id) throws IOException {
    Socket socket = new Socket();
    socket.setReceiveBufferSize(4_096);
    socket.connect(new InetSocketAddress("127.0.0.1", port));
    String request = "GET /admin/reconciliations/" + id + " HTTP/1.1\r\nHost: x\r\n"
        + "Authorization: Bearer " + TestGateway.ADMIN_TOKEN + "\r\n\r\n";
    socket.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
    byte[] statusLine = socket.getInputStream().readNBytes(12);
    assertThat(new String(statusLine, StandardCharsets.US_ASCII)).isEqualTo("HTTP/1.1 200");
    return socket;
  }

  /** The gateway runs in this JVM, so its temporary files are in this java.io.tmpdir. */
  private static long reportFilesLeft() throws IOException {
    try (Stream<Path> files = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
      return files.filter(f -> f.getFileName().toString().startsWith("idemgate-report-")).count();
    }
  }

  /** Files this JVM holds open that were report files and are gone from their directory (Linux /proc). */
  private static long openDeletedReports() {
    try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
      return fds.map(fd -> {
        try {
          return Files.readSymbolicLink(fd).toString();
        } catch (IOException gone) {
          return "";
        }
      }).filter(target -> target.contains("idemgate-report-") && target.endsWith("(deleted)")).count();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Test
  @DisplayName("?settlement_lag= sets the lag of one upload's run, as --settlement-lag does the CLI's: a payment settled "
      + "4 days after its charge is outside the default 2d and within 5d; a value that is no duration, or over 90d, "
      + "gets 400 naming settlement_lag, nothing stored")
  void settlementLagOfOneUpload() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().minus(Duration.ofDays(10)).truncatedTo(ChronoUnit.SECONDS);
      ledger.payment("shop", 2_500, "EUR", "succeeded", ledger.prefix + "ch_1", base);
      String csv = "settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n"
          + shopRow(ledger, "s1", "ch_1", 2_500, base.plus(Duration.ofDays(4)));

      JsonObject defaultLag = awaitCompleted(upload("?merchant_prefix=" + ledger.prefix, csv).json().getString("id"));
      assertThat(defaultLag.getJsonObject("run").getLong("settlement_lag_seconds")).isEqualTo(Duration.ofDays(2).toSeconds());
      assertThat(defaultLag.getJsonObject("summary").getJsonObject("settled_outside_lag").getLong("rows")).isEqualTo(1);

      Http.Reply accepted = upload("?merchant_prefix=" + ledger.prefix + "&settlement_lag=5d", csv);
      assertThat(accepted.status()).as(accepted.body()).isEqualTo(202);
      JsonObject longer = awaitCompleted(accepted.json().getString("id"));
      assertThat(longer.getJsonObject("run").getLong("settlement_lag_seconds")).isEqualTo(Duration.ofDays(5).toSeconds());
      assertThat(longer.getJsonObject("summary").getJsonObject("settled_outside_lag").getLong("rows")).isEqualTo(0);
      assertThat(longer.getJsonArray("discrepancies")).isEmpty();

      String refusedName = ledger.prefix + "refused.csv";
      for (String bad : List.of("5", "-1d", "91d", "soon")) {
        Http.Reply refused = upload("?merchant_prefix=" + ledger.prefix + "&name=" + refusedName + "&settlement_lag=" + bad, csv);
        assertThat(refused.status()).as(bad + ": " + refused.body()).isEqualTo(400);
        assertThat(refused.json().getString("detail")).as(bad).startsWith("settlement_lag");
      }
      assertThat(http.get(gateway.config().managementPort(), "/admin/reconciliations", TestGateway.ADMIN_TOKEN).body())
          .doesNotContain(refusedName);
    }
  }

  @Test
  @DisplayName("DELETE of a run removes it with its discrepancies and the settlements it recorded, so a later file's "
      + "settlement of the same payment is no second one; a run under way gets 409 and is left, and no run is deleted "
      + "while another holds the settlement history, nor one a row of which another transaction holds for 10 s; a RUNNING "
      + "run nothing holds (its process ended) is deleted; an unknown run gets 404")
  void deletingARun() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture();
        Connection holder = Jdbc.connect(TestGateway.pgUrl())) {
      Instant base = Instant.now().minus(Duration.ofDays(5)).truncatedTo(ChronoUnit.SECONDS);
      shopPayments(ledger, base);
      String mistaken = reconcileDuplicateDay(ledger, base);
      assertThat(rowsOfRun(ledger, "reconciliation_settlements", mistaken)).isEqualTo(3);
      assertThat(rowsOfRun(ledger, "reconciliation_discrepancies", mistaken)).isEqualTo(2);

      // A row of the run held elsewhere (a transaction left open on one of its discrepancies) is
      // waited for as long as the history, then the deletion gives up: before, it waited with the
      // history held until the JDBC socket's deadline (15 min).
      holder.setAutoCommit(false);
      try (PreparedStatement s = holder.prepareStatement(
          "SELECT 1 FROM idemgate.reconciliation_discrepancies WHERE run_id = ? LIMIT 1 FOR UPDATE")) {
        s.setString(1, mistaken);
        s.executeQuery().close();
      }
      Http.Reply held = deleteRun(mistaken);
      holder.rollback();
      assertThat(held.status()).as(held.body()).isEqualTo(409);
      assertThat(held.json().getString("detail")).isEqualTo("another transaction held a lock the deletion of run "
          + mistaken + " needed (a row of one of its discrepancies being resolved, say) for " + ReconciliationStore.HISTORY_WAIT_ON_DELETE_SECONDS
          + " s; try again once it has finished (nothing was deleted)");
      assertThat(rowsOfRun(ledger, "reconciliation_discrepancies", mistaken)).as("nothing deleted").isEqualTo(2);

      Http.Reply deleted = deleteRun(mistaken);
      assertThat(deleted.status()).as(deleted.body()).isEqualTo(204);
      assertThat(http.get(gateway.config().managementPort(), "/admin/reconciliations/" + mistaken,
          TestGateway.ADMIN_TOKEN).status()).isEqualTo(404);
      assertThat(rowsOfRun(ledger, "reconciliation_settlements", mistaken)).isZero();
      assertThat(rowsOfRun(ledger, "reconciliation_discrepancies", mistaken)).isZero();
      assertThat(deleteRun(mistaken).status()).as("deleted already").isEqualTo(404);

      // A run its process left RUNNING when it ended: no transaction holds its row.
      String orphan = "rec_" + ledger.prefix.replace("_", "").substring(2) + "dead";
      try (PreparedStatement s = ledger.connection.prepareStatement("""
          INSERT INTO idemgate.reconciliation_runs (id, source, status, settlement_file, merchant_prefix, settlement_lag,
            as_of) VALUES (?, 'api', 'RUNNING', 'dead.csv', ?, interval '2 days', now())""")) {
        s.setString(1, orphan);
        s.setString(2, ledger.prefix);
        s.executeUpdate();
      }
      // ch_1 settled under another id: with the deleted run's settlements still recorded, a second
      // settlement (DUPLICATE_CHARGE after an earlier file). The test holds the settlement history
      // meanwhile, so the run is under way (its row locked) until the test lets it go.
      holder.setAutoCommit(false);
      LedgerFixture.holdTheSettlementHistory(holder);
      String csv = "settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n"
          + shopRow(ledger, "s9", "ch_1", 2_500, base.plus(Duration.ofHours(30)));
      String running = upload("?merchant_prefix=" + ledger.prefix + "&name=again.csv", csv).json().getString("id");
      Waits.eventually(Duration.ofSeconds(60), () -> waitingForTheHistory(holder) == 1,
          "the run waiting for the settlement history");
      Http.Reply underWay = deleteRun(running);
      assertThat(underWay.status()).as(underWay.body()).isEqualTo(409);
      assertThat(underWay.json().getString("detail")).isEqualTo("run " + running
          + " is under way; delete it once it has finished (nothing was deleted)");
      // Nor is any run deleted while a run holds the history: its report could name a run gone.
      Http.Reply busy = deleteRun(orphan);
      assertThat(busy.status()).as(busy.body()).isEqualTo(409);
      assertThat(busy.json().getString("detail")).isEqualTo("another run held the settlement history for "
          + ReconciliationStore.HISTORY_WAIT_ON_DELETE_SECONDS + " s; try again once it has finished (nothing was deleted)");
      holder.commit();
      JsonObject report = awaitCompleted(running);
      assertThat(report.getJsonObject("summary").getJsonObject("by_category").getLong("DUPLICATE_CHARGE"))
          .as(report.getJsonArray("discrepancies").encode()).isZero();

      assertThat(deleteRun(orphan).status()).isEqualTo(204);
      assertThat(deleteRun("rec_0123abcd").status()).isEqualTo(404);
      assertThat(deleteRun("not-a-run").status()).isEqualTo(404);
    }
  }

  private static Http.Reply deleteRun(String id) {
    return http.send(HttpMethod.DELETE, gateway.config().managementPort(), "/admin/reconciliations/" + id,
        Map.of("Authorization", "Bearer " + TestGateway.ADMIN_TOKEN), Buffer.buffer());
  }

  private static long rowsOfRun(LedgerFixture ledger, String table, String runId) throws SQLException {
    try (PreparedStatement s = ledger.connection.prepareStatement(
        "SELECT count(*) FROM idemgate." + table + " WHERE run_id = ?")) {
      s.setString(1, runId);
      try (ResultSet rs = s.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  private static long waitingForTheHistory(Connection c) {
    try {
      return LedgerFixture.sessionsOnTheHistoryLock(c, false);
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  @Test
  @DisplayName("a body that is not a settlement CSV, or a window that ends before it starts, gets 400 with the reason; no token gets 401; unknown run 404")
  void errors() {
    Http.Reply bad = upload("", "{\"not\": \"csv\"}");
    assertThat(bad.status()).isEqualTo(400);
    assertThat(bad.json().getString("code")).isEqualTo("invalid_request");
    assertThat(bad.json().getString("detail")).contains("missing required column(s)");

    int port = gateway.config().managementPort();
    assertThat(http.send(HttpMethod.POST, port, "/admin/reconciliations", Map.of(), Buffer.buffer("a,b\n")).status())
        .isEqualTo(401);
    assertThat(http.get(port, "/admin/reconciliations/rec_nope", TestGateway.ADMIN_TOKEN).status()).isEqualTo(404);

    Http.Reply backwards = upload("?from=2026-12-01&to=2026-11-01", "a,b\n");
    assertThat(backwards.status()).isEqualTo(400);
    assertThat(backwards.json().getString("detail")).contains("from must be before to");
  }

  @Test
  @DisplayName("a provider no column_map names and no payment has gets 400 invalid_request with the providers known, "
      + "before its body is read, and no run is stored; a provider of column_map is taken")
  void unknownProviderIsRefused() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant base = Instant.now().minus(Duration.ofDays(5)).truncatedTo(ChronoUnit.SECONDS);
      shopPayments(ledger, base); // the simulator's
      String name = ledger.prefix + "typo.csv";
      String csv = "settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n"
          + shopRow(ledger, "s1", "ch_1", 2_500, base.plus(Duration.ofHours(5)));

      Http.Reply refused = upload("?provider=" + ledger.prefix + "nosuch&merchant_prefix=" + ledger.prefix + "&name=" + name, csv);

      assertThat(refused.status()).as(refused.body()).isEqualTo(400);
      assertThat(refused.json().getString("code")).isEqualTo("invalid_request");
      assertThat(refused.json().getString("detail"))
          .startsWith("provider '" + ledger.prefix + "nosuch' names no provider reconciliation knows")
          .contains("the ledger has ").contains("simulator").contains("column_map has acme").contains("Leave provider out");
      assertThat(refused.header("Connection")).as("refused before its body is read").isEqualTo("close");
      assertThat(countRuns(ledger.connection, name)).as("runs stored").isZero();

      String acme = "txn_id,charge_id,account,amount_minor,ccy,value_date\n"
          + shopRow(ledger, "s1", "ch_1", 2_500, base.plus(Duration.ofHours(5)));
      Http.Reply taken = upload("?provider=acme&merchant_prefix=" + ledger.prefix + "&name=" + name, acme);
      assertThat(taken.status()).as(taken.body()).isEqualTo(202);
      assertThat(awaitCompleted(taken.json().getString("id")).getJsonObject("run").getString("provider")).isEqualTo("acme");
    }
  }

  private static long countRuns(Connection c, String settlementFile) throws Exception {
    try (var s = c.prepareStatement("SELECT count(*) FROM idemgate.reconciliation_runs WHERE settlement_file = ?")) {
      s.setString(1, settlementFile);
      try (var rs = s.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  @Test
  @DisplayName("an upload refused before its body is read closes its HTTP/1.1 connection, so a client's next request "
      + "on it is not left waiting behind the unread body")
  void refusedUploadClosesTheConnection() throws IOException {
    try (Socket socket = new Socket("127.0.0.1", gateway.config().managementPort())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(("POST /admin/reconciliations?from=2026-12-01&to=2026-11-01 HTTP/1.1\r\nHost: x\r\n"
          + "Authorization: Bearer " + TestGateway.ADMIN_TOKEN + "\r\nContent-Length: 4\r\n\r\na,b\n"
          + "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
      assertThat(answer).startsWith("HTTP/1.1 400 ").containsIgnoringCase("connection: close");
    }
  }

  @Test
  @DisplayName("a query parameter given empty (?provider=) gets 400 invalid_request, nothing stored, as the CLI refuses --provider ''")
  void emptyParameterRefused() {
    // A file that would be taken: without the refusal each of these uploads would be run.
    String csv = String.join(",", SettlementReader.COLUMNS) + "\n";
    String before = newestRun();
    for (String query : new String[] {"?provider=", "?provider=%20", "?from=&to=2026-11-01", "?merchant_prefix=", "?name="}) {
      Http.Reply refused = upload(query, csv);
      assertThat(refused.status()).as(query).isEqualTo(400);
      assertThat(refused.header("Content-Type")).as(query).startsWith("application/problem+json");
      assertThat(refused.json().getString("code")).as(query).isEqualTo("invalid_request");
      assertThat(refused.json().getString("detail")).as(query).contains("must not be empty: leave it out");
    }
    assertThat(upload("?provider=", csv).json().getString("detail"))
        .isEqualTo("provider must not be empty: leave it out for every provider's payments");
    assertThat(newestRun()).isEqualTo(before);
  }

  @Test
  @DisplayName("a card number, an API key or the admin token in an upload's name, provider or merchant_prefix, or in a "
      + "resolution's note, gets 400 card_data_rejected or credential_rejected naming the field, never the value; "
      + "nothing is stored")
  void secretsInFieldsRefused() throws Exception {
    String csv = String.join(",", SettlementReader.COLUMNS) + "\n";
    String before = newestRun();
    String[][] uploads = {
        {"?name=recon-4111111111111111.csv", "4111111111111111", "card_data_rejected", "name"},
        {"?merchant_prefix=4242%204242%204242%204242", "4242 4242 4242 4242", "card_data_rejected", "merchant_prefix"},
        {"?provider=" + TestGateway.KEY_A, TestGateway.KEY_A, "credential_rejected", "provider"},
        {"?name=" + TestGateway.KEY_B + ".csv", TestGateway.KEY_B, "credential_rejected", "name"},
        {"?merchant_prefix=" + TestGateway.ADMIN_TOKEN, TestGateway.ADMIN_TOKEN, "credential_rejected", "merchant_prefix"}};
    for (String[] refusal : uploads) {
      Http.Reply refused = upload(refusal[0], csv);
      assertThat(refused.status()).as(refusal[0]).isEqualTo(400);
      assertThat(refused.header("Content-Type")).startsWith("application/problem+json");
      assertThat(refused.json().getString("code")).as(refusal[0]).isEqualTo(refusal[2]);
      assertThat(refused.json().getString("detail")).as(refusal[0]).startsWith(refusal[3] + " holds ");
      assertThat(refused.body()).as(refusal[0]).doesNotContain(refusal[1]);
    }
    assertThat(newestRun()).as("no run stored").isEqualTo(before);

    int port = gateway.config().managementPort();
    String[][] notes = {
        {"refunded the card 4111 1111 1111 1111", "4111 1111 1111 1111", "card_data_rejected"},
        {"rotated the key " + TestGateway.KEY_A, TestGateway.KEY_A, "credential_rejected"},
        {"admin token " + TestGateway.ADMIN_TOKEN + " used", TestGateway.ADMIN_TOKEN, "credential_rejected"}};
    for (String[] refusal : notes) {
      // Refused before the run is looked up: this run does not exist, and the answer is not 404.
      Http.Reply refused = http.send(HttpMethod.POST, port, "/admin/reconciliations/rec_0123/discrepancies/1/resolve",
          admin(), Buffer.buffer(new JsonObject().put("note", refusal[0]).encode()));
      assertThat(refused.status()).as(refusal[0]).isEqualTo(400);
      assertThat(refused.json().getString("code")).as(refusal[0]).isEqualTo(refusal[2]);
      assertThat(refused.json().getString("detail")).as(refusal[0]).startsWith("note holds ");
      assertThat(refused.body()).as(refusal[0]).doesNotContain(refusal[1]);
    }

    // A file named with a time is taken, though epoch milliseconds pass the Luhn check one time in ten.
    long millis = System.currentTimeMillis();
    while (!dev.idemgate.payment.CardNumberScanner.containsCardNumber(Long.toString(millis))) {
      millis++;
    }
    Http.Reply timed = upload("?name=settlement-" + millis + ".csv", csv);
    assertThat(timed.status()).as(timed.body()).isEqualTo(202);
    awaitCompleted(timed.json().getString("id"));
    // So is a 15-digit merchant id that passes it (no card network's first digits).
    assertThat(dev.idemgate.payment.CardNumberScanner.containsCardNumber("800123456789017")).isTrue();
    Http.Reply merchant = upload("?merchant_prefix=800123456789017", csv);
    assertThat(merchant.status()).as(merchant.body()).isEqualTo(202);
    awaitCompleted(merchant.json().getString("id"));
  }

  @Test
  @DisplayName("a malformed line's reason shows none of an API key or the admin token the line holds, as it shows no "
      + "card number: the reasons are stored with the run and shown in every report")
  void malformedLinesShowNoCredentials() throws Exception {
    try (LedgerFixture ledger = new LedgerFixture()) {
      Instant at = Instant.now().minus(Duration.ofDays(5)).truncatedTo(ChronoUnit.SECONDS);
      String shop = ledger.merchant("shop");
      String csv = "settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n"
          + "s1,ch_1," + shop + "," + TestGateway.KEY_A + ",EUR," + at + "\n"
          + "s2,ch_2," + shop + ",100,x " + TestGateway.ADMIN_TOKEN + "," + at + "\n"
          // The same settlement_id twice with another amount: a contradiction, reported with the id.
          + TestGateway.KEY_B + ",ch_3," + shop + ",100,EUR," + at + "\n"
          + TestGateway.KEY_B + ",ch_3," + shop + ",200,EUR," + at + "\n";
      String id = awaitCompleted(upload("?merchant_prefix=" + ledger.prefix, csv).json().getString("id"))
          .getJsonObject("run").getString("id");
      JsonArray malformed = reportOf(id).getJsonArray("malformed_rows");
      assertThat(malformed).hasSize(3);
      assertThat(malformed.encode()).doesNotContain(TestGateway.KEY_A, TestGateway.KEY_B, TestGateway.ADMIN_TOKEN)
          .contains("amount '<not shown: it holds an API key>'", "currency '<not shown: it holds the admin token>'",
              "settlement_id '<not shown: it holds an API key>'");
    }
  }

  @Test
  @DisplayName("an upload with a line longer than 1 MiB gets 400 naming its line, no run stored (not 202 and a FAILED run)")
  void overlongRecordRefusedBeforeARun() {
    String csv = String.join(",", SettlementReader.COLUMNS) + "\n"
        + "s1,ch_1,,m1,100,EUR,settled,2026-11-01T00:00:00Z\n"
        + "s2,\"" + "x".repeat((1 << 20) + 10) + "\n";
    String before = newestRun();
    Http.Reply refused = upload("?name=runaway.csv", csv);
    assertThat(refused.status()).isEqualTo(400);
    assertThat(refused.json().getString("code")).isEqualTo("invalid_request");
    assertThat(refused.json().getString("detail")).isEqualTo("runaway.csv line 3: a line longer than 1048576 characters");
    assertThat(newestRun()).isEqualTo(before);
  }

  /** The id of the newest run stored, or null. */
  private static String newestRun() {
    JsonArray runs = http.get(gateway.config().managementPort(), "/admin/reconciliations", TestGateway.ADMIN_TOKEN).json()
        .getJsonArray("runs");
    return runs.isEmpty() ? null : runs.getJsonObject(0).getString("id");
  }

  @Test
  @DisplayName("a NUL or other control character in a run id, a query parameter or a note gets 404 or 400, never a 500")
  void controlCharacters() {
    int port = gateway.config().managementPort();
    try (CapturedLogs problems = CapturedLogs.of(Problems.class)) {
      assertThat(http.get(port, "/admin/reconciliations/rec_00%00", TestGateway.ADMIN_TOKEN).status()).isEqualTo(404);
      assertThat(http.send(HttpMethod.POST, port, "/admin/reconciliations/rec_00%00/discrepancies/1/resolve", admin(),
          Buffer.buffer("{}")).status()).isEqualTo(404);
      for (String query : new String[] {"?name=a%00b", "?provider=x%00", "?merchant_prefix=m%0A"}) {
        Http.Reply refused = upload(query, "a,b\n");
        assertThat(refused.status()).as(query).isEqualTo(400);
        assertThat(refused.json().getString("detail")).contains("control characters");
      }
      Http.Reply note = http.send(HttpMethod.POST, port, "/admin/reconciliations/rec_0123/discrepancies/1/resolve", admin(),
          Buffer.buffer("{\"note\":\"a\\u0000b\"}"));
      assertThat(note.status()).isEqualTo(400);
      Http.Reply huge = http.send(HttpMethod.POST, port, "/admin/reconciliations/rec_0123/discrepancies/1/resolve", admin(),
          Buffer.buffer("{\"note\":\"" + "n".repeat(100_000) + "\"}"));
      assertThat(huge.status()).isEqualTo(413);
      assertThat(problems.events()).noneMatch(e -> e.getLevel() == Level.ERROR);
    }
  }

  /**
   * Each test starts with no upload or run under way: a run of a test before still holds its place
   * for a moment after it is recorded as done, and two would refuse this test's uploads with 429.
   */
  @BeforeEach
  void noneUnderWay() {
    awaitNoneUnderWay();
  }

  /** Until this gateway has no upload or run under way, as its list says. */
  private static void awaitNoneUnderWay() {
    Waits.eventually(Duration.ofSeconds(60), () -> underWay() == 0, "no upload or run under way");
  }

  /** Uploads and runs under way on this gateway, as its list says. */
  private static int underWay() {
    return http.get(gateway.config().managementPort(), "/admin/reconciliations", TestGateway.ADMIN_TOKEN).json()
        .getJsonObject("under_way").getInteger("here");
  }

  private static JsonObject awaitCompleted(String id) throws InterruptedException {
    // A run of these sizes takes a few seconds; one 10,000-row run was seen still RUNNING after 30 s
    // in a fresh-clone CI run (session 25) and never again in the runs after: not understood. The
    // deadline tells a run that never ends from a slow moment of a shared machine.
    long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
    while (true) {
      JsonObject body = http.get(gateway.config().managementPort(), "/admin/reconciliations/" + id, TestGateway.ADMIN_TOKEN).json();
      String status = body.getJsonObject("run").getString("status");
      if (!status.equals("RUNNING") || System.nanoTime() > deadline) {
        assertThat(status).as(body.encode()).isEqualTo("COMPLETED");
        return body;
      }
      Thread.sleep(100);
    }
  }
}
