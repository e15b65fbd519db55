package dev.idemgate.reconciliation;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.Writer;
import java.sql.Connection;
import java.util.List;
import java.util.Locale;

/**
 * Writes a stored run as JSON, CSV or HTML. JSON and CSV stream every discrepancy by priority;
 * HTML shows the charts and the discrepancies a person should act on first.
 */
public final class ReportWriter {
  /** Probable matches listed in the JSON report (lowest confidence first); all are in the database. */
  static final int PROBABLE_MATCHES_LISTED = 1_000;
  /** Discrepancies listed in the HTML report; JSON and CSV list all. */
  static final int HTML_ROWS = 200;

  static final List<String> CSV_COLUMNS = List.of("priority", "category", "remediation", "status", "score",
      "value", "value_currency", "value_minor", "payment_id", "merchant_id", "settlement_id", "settlement_line",
      "provider_reference", "provider_key", "ledger_amount", "ledger_currency", "ledger_status", "settlement_amount",
      "settlement_currency", "settlement_status", "match_method", "confidence", "occurred_at", "age_days", "evidence", "id",
      "resolved_at", "resolution_note");

  private ReportWriter() {}

  /** Writes run {@code runId} in {@code format}; the caller closes {@code out}. */
  public static void write(ReportFormat format, Connection c, ReconciliationRun run, Writer out) throws Exception {
    switch (format) {
      case JSON -> json(c, run, out);
      case CSV -> csv(c, run, out);
      case HTML -> HtmlReport.write(c, run, out);
    }
    out.flush();
  }

  private static void json(Connection c, ReconciliationRun run, Writer out) throws Exception {
    out.write("{\"run\":");
    out.write(run.toJson().encode());
    out.write(",\n\"summary\":");
    // The stored summary counts what the run found; open and resolved are read now, so that they
    // count the resolutions made since.
    out.write(run.summary() == null ? "null"
        : run.summary().copy().mergeIn(ReconciliationStore.currentFigures(c, run.id())).encode());
    out.write(",\n\"discrepancies\":[");
    boolean[] first = {true};
    ReconciliationStore.discrepancies(c, run.id(), 0, d -> {
      out.write(first[0] ? "\n" : ",\n");
      first[0] = false;
      out.write(d.toJson(run.asOf()).encode());
    });
    out.write("],\n\"probable_matches\":");
    out.write(new JsonArray(ReconciliationStore.probableMatches(c, run.id(), PROBABLE_MATCHES_LISTED)).encode());
    out.write(",\n\"malformed_rows\":");
    out.write(run.malformedRows().encode());
    out.write("}\n");
  }

  private static void csv(Connection c, ReconciliationRun run, Writer out) throws Exception {
    out.write(String.join(",", CSV_COLUMNS));
    out.write("\r\n");
    ReconciliationStore.discrepancies(c, run.id(), 0, d -> {
      Object[] values = {d.priority(), d.category().name(), d.remediation().name(), d.status(),
          String.format(Locale.ROOT, "%.3f", d.score()), Discrepancy.major(d.valueMinor(), d.valueCurrency()),
          d.valueCurrency(), d.valueMinor(), d.paymentId(), d.merchantId(), d.settlementId(), d.settlementLine(),
          d.providerReference(), d.providerKey(), d.ledgerAmount(), d.ledgerCurrency(), d.ledgerStatus(),
          d.settlementAmount(), d.settlementCurrency(), d.settlementStatus(), d.matchMethod(),
          d.confidence() == null ? null : String.format(Locale.ROOT, "%.4f", d.confidence()),
          d.occurredAt().toString(), String.format(Locale.ROOT, "%.1f", d.ageDays(run.asOf())), d.evidence().encode(), d.id(),
          d.resolvedAt(), d.resolutionNote()};
      for (int i = 0; i < values.length; i++) {
        if (i > 0) {
          out.write(',');
        }
        out.write(csvField(values[i]));
      }
      out.write("\r\n");
    });
  }

  /**
   * RFC 4180 quoting. Text that a spreadsheet would run as a formula (a provider's file is not
   * trusted input) gets a leading apostrophe. A field holding ';' is quoted too: Excel set to the
   * ';' list separator (de-DE, fr-FR …) splits an unquoted field there, and a piece that starts
   * with '=' would be a formula cell; quoted, the field is one cell that starts with its first
   * character, which the apostrophe rule has made safe.
   */
  static String csvField(Object value) {
    if (value == null) {
      return "";
    }
    String s = value.toString();
    if (!(value instanceof Number) && !s.isEmpty() && "=+-@\t\r".indexOf(s.charAt(0)) >= 0) {
      s = "'" + s;
    }
    if (s.indexOf(',') >= 0 || s.indexOf(';') >= 0 || s.indexOf('"') >= 0 || s.indexOf('\n') >= 0
        || s.indexOf('\r') >= 0) {
      return '"' + s.replace("\"", "\"\"") + '"';
    }
    return s;
  }

  static JsonObject summaryOrEmpty(ReconciliationRun run) {
    return run.summary() == null ? new JsonObject() : run.summary();
  }
}
