package dev.idemgate.reconciliation;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.Writer;
import java.math.BigDecimal;
import java.sql.Connection;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A self-contained HTML report for a finance reader: inline CSS and inline SVG charts (no script,
 * font or image is fetched), the counts and the money at stake by category, the discrepancies
 * to act on first with what to do about each, and the latest resolutions with their notes.
 */
final class HtmlReport {
  /** How the report shows a category: its colour, its name, and what it means for the money. */
  private record Look(String colour, String label, String meaning) {}

  private static final Map<Category, Look> LOOKS = new EnumMap<>(Map.of(
      Category.DUPLICATE_CHARGE, new Look("#c0392b", "Duplicate charge",
          "The provider settled one payment more than once (in this file, or in this one after an earlier file), and did not refund or charge back the extra: the customer paid twice."),
      Category.ORPHAN_AT_PROVIDER, new Look("#d35400", "Orphan at provider",
          "The provider settled, refunded or charged back money that no payment in our ledger accounts for."),
      Category.STATUS_MISMATCH, new Look("#8e44ad", "Status mismatch",
          "Our ledger and the provider disagree on whether the money moved (declined here, settled there; or reversed there)."),
      Category.AMOUNT_MISMATCH, new Look("#2471a3", "Amount mismatch",
          "Both sides have the payment, with different amounts."),
      Category.CURRENCY_MISMATCH, new Look("#138d75", "Currency mismatch",
          "Both sides have the payment, in different currencies."),
      Category.MISSING_IN_SETTLEMENT, new Look("#b7950b", "Missing in settlement",
          "Our ledger says the charge succeeded, but it was not settled within the settlement lag."),
      Category.STUCK_IN_LEDGER, new Look("#5d6d7e", "Stuck in ledger",
          "Our ledger does not know the payment's outcome: it is pending (recovery may still be asking the provider), or its claim is past its lease.")));
  private static final Map<Category.Remediation, String> ACTIONS = new EnumMap<>(Map.of(
      Category.Remediation.FIND_REVERSED_PAYMENT, "Find the reversed payment; do not refund",
      Category.Remediation.REFUND_DUPLICATE, "Refund the duplicate",
      Category.Remediation.REFUND_OR_RECORD_ORPHAN, "Refund, or record the payment",
      Category.Remediation.CORRECT_LEDGER_STATUS, "Correct the ledger status",
      Category.Remediation.RAISE_WITH_PROVIDER, "Raise with the provider",
      Category.Remediation.REQUERY_PROVIDER, "Ask the provider",
      Category.Remediation.RESOLVE_STUCK, "Resolve the stuck payment",
      Category.Remediation.REVIEW_CANDIDATE, "Check the candidate payments; do not refund before",
      Category.Remediation.REVIEW_DUPLICATE, "Check with the provider that it charged twice; do not refund before"));

  private static final String CSS = """
      *{box-sizing:border-box}
      body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1c2833;margin:0;background:#f4f6f7}
      main{max-width:1180px;margin:0 auto;padding:28px 32px 48px}
      h1{font-size:26px;margin:0 0 4px}
      h2{font-size:18px;margin:32px 0 12px;border-bottom:1px solid #d5d8dc;padding-bottom:6px}
      .meta{color:#566573;font-size:13px;margin-bottom:20px}
      .cards{display:flex;gap:14px;flex-wrap:wrap}
      .card{background:#fff;border:1px solid #d5d8dc;border-radius:8px;padding:14px 18px;min-width:190px;flex:1}
      .card .n{font-size:26px;font-weight:600}
      .card .l{color:#566573;font-size:13px;margin-top:2px}
      .card.alert .n{color:#c0392b}
      .card .n.stake{font-size:17px;line-height:1.35}
      .charts{display:flex;gap:18px;flex-wrap:wrap}
      .chart{background:#fff;border:1px solid #d5d8dc;border-radius:8px;padding:14px;flex:1;min-width:520px}
      .chart h3{margin:0 0 8px;font-size:15px}
      svg text{font-family:inherit;font-size:12px;fill:#1c2833}
      table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;border:1px solid #d5d8dc}
      th{background:#eaeded;text-align:left;padding:7px 8px;font-weight:600;position:sticky;top:0}
      td{padding:6px 8px;border-top:1px solid #eaeded;vertical-align:top}
      td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
      .tag{display:inline-block;padding:2px 7px;border-radius:10px;color:#fff;font-size:12px;white-space:nowrap}
      .mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
      .muted{color:#808b96}
      .legend td:first-child{white-space:nowrap}
      .note{color:#566573;font-size:13px}
      td.resolution{white-space:pre-wrap;overflow-wrap:anywhere}
      """;

  /** The characters of a resolution note the page shows; the JSON and CSV reports have it whole. */
  private static final int NOTE_SHOWN = 1_000;

  private HtmlReport() {}

  static void write(Connection c, ReconciliationRun run, Writer out) throws Exception {
    JsonObject summary = ReportWriter.summaryOrEmpty(run);
    JsonObject rows = summary.getJsonObject("rows", new JsonObject());
    // The page is for acting: its figures, charts and table leave out what is resolved, read now
    // (not from the stored summary), so a resolution made since the run counts.
    JsonObject figures = ReconciliationStore.currentFigures(c, run.id());
    JsonObject open = figures.getJsonObject("open");
    JsonObject counts = open.getJsonObject("by_category");
    JsonObject values = open.getJsonObject("value_by_category");
    JsonObject atStake = open.getJsonObject("value_at_stake");
    long resolved = figures.getLong("resolved");

    out.write("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        + "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        + "<title>Reconciliation " + esc(run.id()) + "</title><style>" + CSS + "</style></head><body><main>\n");
    out.write("<h1>Settlement reconciliation</h1>\n<div class=\"meta\">File <b>" + esc(run.settlementFile()) + "</b>"
        + (run.provider() == null ? "" : " · provider <b>" + esc(run.provider()) + "</b>")
        + (run.merchantPrefix() == null ? "" : " · merchants <b>" + esc(run.merchantPrefix()) + "*</b>")
        + " · ledger window " + (run.windowFrom() == null ? "—" : esc(day(run.windowFrom().toString()) + " to " + day(run.windowTo().toString())))
        + " · run <span class=\"mono\">" + esc(run.id()) + "</span> · " + esc(run.status())
        + " · as of " + esc(time(run.asOf())) + "</div>\n");
    if (run.error() != null) {
      out.write("<p class=\"card alert\">This run failed: " + esc(run.error()) + "</p>");
    }
    for (Object warning : summary.getJsonArray("warnings", new JsonArray())) {
      out.write("<p class=\"card alert\">Warning: " + esc(String.valueOf(warning)) + "</p>");
    }

    long total = open.getLong("total");
    out.write("<div class=\"cards\">");
    card(out, String.format(Locale.ROOT, "%,d", total), "discrepancies to look at"
        + (resolved > 0 ? String.format(Locale.ROOT, " (%,d more resolved)", resolved) : ""), total > 0);
    out.write("<div class=\"card\"><div class=\"n stake\">" + stakeHeadline(atStake)
        + "</div><div class=\"l\">money at stake, each payment and settlement counted once (no exchange rates: "
        + "each currency on its own)</div></div>");
    card(out, String.format(Locale.ROOT, "%,d of %,d", rows.getLong("matched", 0L), rows.getLong("reconciled", 0L)),
        "settlement rows matched to the ledger", false);
    card(out, String.format(Locale.ROOT, "%,d", summary.getLong("needs_review", 0L)),
        "possible matches left for a person", false);
    card(out, String.format(Locale.ROOT, "%,d", rows.getLong("malformed", 0L)), "unreadable lines in the file",
        rows.getLong("malformed", 0L) > 0);
    out.write("</div>\n");

    out.write("<h2>Where the problems are</h2><div class=\"charts\">");
    out.write("<div class=\"chart\"><h3>Number of open discrepancies by category</h3>");
    List<Bar> countBars = new ArrayList<>();
    for (Category category : Category.values()) {
      long n = counts.getLong(category.name(), 0L);
      countBars.add(new Bar(category, n, String.format(Locale.ROOT, "%,d", n)));
    }
    out.write(barChart(countBars));
    out.write("</div>");
    for (String currency : topCurrencies(atStake, 3)) {
      out.write("<div class=\"chart\"><h3>Money at stake by category, " + esc(currency)
          + "</h3><p class=\"note\">A payment with discrepancies of two categories is in both bars.</p>");
      List<Bar> valueBars = new ArrayList<>();
      for (Category category : Category.values()) {
        long minor = values.getJsonObject(category.name(), new JsonObject()).getLong(currency, 0L);
        valueBars.add(new Bar(category, minor, money(minor, currency)));
      }
      out.write(barChart(valueBars));
      out.write("</div>");
    }
    out.write("</div>\n");

    out.write("<h2>Act on these first</h2><p class=\"note\">Sorted by priority: the money at stake, how serious "
        + "the category is, and how old the item is; # is the order to act in. Id is the discrepancy's id in the "
        + "JSON and CSV reports, the one to resolve it by. " + (total > ReportWriter.HTML_ROWS
        ? String.format(Locale.ROOT, "The first %,d of %,d open are shown; the JSON and CSV reports list all.", ReportWriter.HTML_ROWS, total)
        : "") + (resolved > 0 ? String.format(Locale.ROOT, " %,d resolved are not listed here but under Resolved below.",
        resolved) : "") + "</p>\n");
    out.write("<table><thead><tr><th class=\"num\">#</th><th class=\"num\">Id</th><th>Category</th><th>What to do</th>"
        + "<th class=\"num\">At stake</th>"
        + "<th class=\"num\">Ledger</th><th class=\"num\">Provider</th><th>Payment · settlement · reference</th>"
        + "<th>Match</th><th class=\"num\">Age (days)</th></tr></thead><tbody>\n");
    // # counts the rows shown, 1, 2, 3…: the order to act in now. The run's priority (the rank among
    // all it found, resolved ones included) would leave a gap for each one resolved; the Id is the
    // stable name of a discrepancy, the one the JSON report lists and a resolution is sent for.
    int[] shown = {0};
    ReconciliationStore.discrepancies(c, run.id(), true, ReportWriter.HTML_ROWS, d -> out.write(row(++shown[0], d, run)));
    if (total == 0) {
      out.write("<tr><td colspan=\"10\" class=\"muted\">" + (resolved > 0 ? "No open discrepancies: all are resolved."
          : "No discrepancies: the ledger and the settlement file agree.") + "</td></tr>");
    }
    out.write("</tbody></table>\n");

    if (resolved > 0) {
      out.write("<h2>Resolved</h2><p class=\"note\">When each was resolved, and the note it was resolved with; one "
          + "resolved in an earlier run with the same facts names that run. Latest first. " + (resolved > ReportWriter.HTML_ROWS
          ? String.format(Locale.ROOT, "The latest %,d of %,d are shown; the JSON and CSV reports list all.", ReportWriter.HTML_ROWS, resolved)
          : "") + "</p>\n");
      out.write("<table><thead><tr><th class=\"num\">Id</th><th>Category</th><th class=\"num\">At stake</th>"
          + "<th>Payment · settlement · reference</th><th>Resolved</th><th>Note</th></tr></thead><tbody>\n");
      ReconciliationStore.resolvedDiscrepancies(c, run.id(), ReportWriter.HTML_ROWS, d -> out.write(resolvedRow(d)));
      out.write("</tbody></table>\n");
    }

    out.write("<h2>What the categories mean</h2><table class=\"legend\"><thead><tr><th>Category</th><th>Meaning</th>"
        + "<th>What to do</th><th class=\"num\">Open</th></tr></thead><tbody>");
    for (Category category : Category.values()) {
      out.write("<tr><td>" + tag(category) + "</td><td>" + esc(LOOKS.get(category).meaning()) + "</td><td>"
          + esc(whatToDo(category)) + "</td><td class=\"num\">"
          + String.format(Locale.ROOT, "%,d", counts.getLong(category.name(), 0L)) + "</td></tr>");
    }
    out.write("</tbody></table>\n");

    out.write("<h2>How rows were matched</h2>");
    out.write(matchTable(summary.getJsonObject("matches", new JsonObject())));
    out.write("<p class=\"note\">References and provider keys are certain. Rows without them were matched by "
        + "probabilistic record linkage on amount, currency, merchant and time (Fellegi–Sunter, weights learned "
        + "from this file); a pair is accepted only when its confidence is high, otherwise it is left for a person.</p>");

    JsonArray malformed = run.malformedRows();
    if (!malformed.isEmpty()) {
      out.write("<h2>Lines of the file that could not be read</h2><table><thead><tr><th class=\"num\">Line</th>"
          + "<th>Reason</th></tr></thead><tbody>");
      for (int i = 0; i < Math.min(malformed.size(), 100); i++) {
        JsonObject m = malformed.getJsonObject(i);
        out.write("<tr><td class=\"num\">" + m.getLong("line") + "</td><td>" + esc(m.getString("reason")) + "</td></tr>");
      }
      out.write("</tbody></table>");
      if (rows.getLong("malformed", 0L) > 100) {
        out.write("<p class=\"note\">" + String.format(Locale.ROOT, "%,d lines in all; the JSON report lists the first %,d.",
            rows.getLong("malformed", 0L), Reconciler.MALFORMED_KEPT) + "</p>");
      }
    }
    out.write("\n</main></body></html>\n");
  }

  private record Bar(Category category, long value, String label) {}

  /** A horizontal bar chart, one bar per category, scaled to the largest value. */
  private static String barChart(List<Bar> bars) {
    int labelWidth = 160;
    int barArea = 250;
    int rowHeight = 28;
    int width = labelWidth + barArea + 120;
    int height = bars.size() * rowHeight + 8;
    long max = bars.stream().mapToLong(Bar::value).max().orElse(0);
    StringBuilder svg = new StringBuilder();
    svg.append("<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"100%\" viewBox=\"0 0 ")
        .append(width).append(' ').append(height).append("\">");
    int y = 4;
    for (Bar bar : bars) {
      double length = max == 0 ? 0 : Math.max(bar.value() > 0 ? 2 : 0, barArea * (double) bar.value() / max);
      svg.append("<text x=\"").append(labelWidth - 8).append("\" y=\"").append(y + 18)
          .append("\" text-anchor=\"end\">").append(esc(LOOKS.get(bar.category()).label())).append("</text>");
      svg.append("<rect x=\"").append(labelWidth).append("\" y=\"").append(y + 5).append("\" width=\"")
          .append(String.format(Locale.ROOT, "%.1f", length)).append("\" height=\"").append(rowHeight - 10)
          .append("\" rx=\"3\" fill=\"").append(LOOKS.get(bar.category()).colour()).append("\"><title>")
          .append(esc(LOOKS.get(bar.category()).label() + ": " + bar.label())).append("</title></rect>");
      svg.append("<text x=\"").append(String.format(Locale.ROOT, "%.1f", labelWidth + length + 6)).append("\" y=\"")
          .append(y + 18).append("\">").append(esc(bar.label())).append("</text>");
      y += rowHeight;
    }
    svg.append("<line x1=\"").append(labelWidth).append("\" x2=\"").append(labelWidth).append("\" y1=\"2\" y2=\"")
        .append(height - 2).append("\" stroke=\"#aab7b8\"/></svg>");
    return svg.toString();
  }

  private static String row(int number, Discrepancy d, ReconciliationRun run) {
    String ledger = d.ledgerAmount() == null ? "<span class=\"muted\">none</span>"
        : esc(money(d.ledgerAmount(), d.ledgerCurrency())) + "<br><span class=\"muted\">" + esc(d.ledgerStatus()) + "</span>";
    String provider = d.settlementAmount() == null ? "<span class=\"muted\">none</span>"
        : esc(money(d.settlementAmount(), d.settlementCurrency())) + "<br><span class=\"muted\">" + esc(d.settlementStatus()) + "</span>";
    StringBuilder ids = ids(d);
    if (d.evidence().containsKey("candidate_confidence")) {
      ids.append("<br><span class=\"muted\">possible match ")
          .append(esc(String.valueOf(d.evidence().getValue(d.paymentId() == null ? "candidate_payment_id" : "candidate_settlement_line"))))
          .append(" (confidence ").append(d.evidence().getValue("candidate_confidence")).append("): check by hand</span>");
    }
    String match = d.matchMethod() == null ? "<span class=\"muted\">—</span>"
        : esc(d.matchMethod().replace('_', ' ')) + String.format(Locale.ROOT, "<br><span class=\"muted\">%.0f%%</span>", 100 * d.confidence());
    return "<tr><td class=\"num\">" + number + "</td><td class=\"num mono\">" + d.id() + "</td><td>"
        + tag(d.category()) + "</td><td>"
        + esc(ACTIONS.get(d.remediation())) + "</td><td class=\"num\"><b>"
        + esc(money(d.valueMinor(), d.valueCurrency())) + "</b></td><td class=\"num\">" + ledger
        + "</td><td class=\"num\">" + provider + "</td><td>" + ids + "</td><td>" + match + "</td><td class=\"num\">"
        + String.format(Locale.ROOT, "%.1f", d.ageDays(run.asOf())) + "</td></tr>\n";
  }

  /** The payment, settlement row and reference of a discrepancy, those it has, one a line. */
  private static StringBuilder ids(Discrepancy d) {
    StringBuilder ids = new StringBuilder("<span class=\"mono\">");
    if (d.paymentId() != null) {
      ids.append(esc(d.paymentId())).append("<br>");
    }
    if (d.settlementId() != null) {
      ids.append("settlement ").append(esc(d.settlementId())).append(" (line ").append(d.settlementLine()).append(")<br>");
    }
    if (d.providerReference() != null) {
      ids.append("ref ").append(esc(d.providerReference()));
    }
    return ids.append("</span>");
  }

  /** A resolved discrepancy: what it was, when it was resolved and the note, cut at {@value #NOTE_SHOWN} characters. */
  private static String resolvedRow(Discrepancy d) {
    String note = d.resolutionNote() == null ? "<span class=\"muted\">no note</span>"
        : d.resolutionNote().length() <= NOTE_SHOWN ? esc(d.resolutionNote())
        // Not between the two halves of a surrogate pair.
        : esc(d.resolutionNote().substring(0, Character.isHighSurrogate(d.resolutionNote().charAt(NOTE_SHOWN - 1))
            ? NOTE_SHOWN - 1 : NOTE_SHOWN)) + "<span class=\"muted\">… (whole in the JSON and CSV reports)</span>";
    return "<tr><td class=\"num mono\">" + d.id() + "</td><td>" + tag(d.category()) + "</td><td class=\"num\">"
        + esc(money(d.valueMinor(), d.valueCurrency())) + "</td><td>" + ids(d) + "</td><td class=\"num\">"
        + (d.resolvedAt() == null ? "—" : esc(time(d.resolvedAt()))) + "</td><td class=\"resolution\">" + note + "</td></tr>\n";
  }

  private static String matchTable(JsonObject matches) {
    StringBuilder t = new StringBuilder("<table><thead><tr><th>Method</th><th class=\"num\">Rows</th>"
        + "<th class=\"num\">Lowest confidence</th></tr></thead><tbody>");
    for (String method : List.of("provider_reference", "provider_reference_normalized", "provider_key", "probabilistic")) {
      JsonObject m = matches.getJsonObject(method, new JsonObject());
      t.append("<tr><td>").append(esc(method.replace('_', ' '))).append("</td><td class=\"num\">")
          .append(String.format(Locale.ROOT, "%,d", m.getLong("rows", 0L))).append("</td><td class=\"num\">")
          .append(m.containsKey("min_confidence") ? String.format(Locale.ROOT, "%.1f%%", 100 * m.getDouble("min_confidence")) : "—")
          .append("</td></tr>");
    }
    return t.append("</tbody></table>").toString();
  }

  private static void card(Writer out, String number, String label, boolean alert) throws java.io.IOException {
    out.write("<div class=\"card" + (alert ? " alert" : "") + "\"><div class=\"n\">" + esc(number)
        + "</div><div class=\"l\">" + esc(label) + "</div></div>");
  }

  /** The legend's action for a category: its remediation's, and the other ones some of its rows get. */
  private static String whatToDo(Category category) {
    String action = ACTIONS.get(category.remediation());
    return switch (category) {
      case ORPHAN_AT_PROVIDER -> action + "; when ledger payments could be it: "
          + ACTIONS.get(Category.Remediation.REVIEW_CANDIDATE) + "; for a refund or chargeback: "
          + ACTIONS.get(Category.Remediation.FIND_REVERSED_PAYMENT);
      case DUPLICATE_CHARGE -> action + "; when an earlier file's settlement may be this one: "
          + ACTIONS.get(Category.Remediation.REVIEW_DUPLICATE);
      default -> action;
    };
  }

  private static String tag(Category category) {
    return "<span class=\"tag\" style=\"background:" + LOOKS.get(category).colour() + "\">" + esc(LOOKS.get(category).label()) + "</span>";
  }

  /** The currencies with the most money at stake, largest first (no exchange rates: each is charted alone). */
  private static List<String> topCurrencies(JsonObject atStake, int limit) {
    return atStake.fieldNames().stream()
        .sorted(Comparator.comparing((String currency) -> majorValue(atStake.getLong(currency), currency)).reversed())
        .limit(limit).toList();
  }

  /**
   * The money at stake in the three largest currencies. It is {@code value_at_stake}, never the sum
   * of {@code value_by_category}, whose categories overlap (one payment can be two discrepancies).
   */
  private static String stakeHeadline(JsonObject atStake) {
    List<String> parts = topCurrencies(atStake, 3).stream().map(currency -> money(atStake.getLong(currency), currency)).toList();
    if (parts.isEmpty()) {
      return "none";
    }
    int more = atStake.size() - parts.size();
    return parts.stream().map(HtmlReport::esc).collect(java.util.stream.Collectors.joining("<br>"))
        + (more > 0 ? "<br><span class=\"muted\">and " + more + " more</span>" : "");
  }

  private static double majorValue(long minor, String currency) {
    return new BigDecimal(Discrepancy.major(minor, currency)).doubleValue();
  }

  /** e.g. "EUR 1,234.56", "JPY 5,000". */
  static String money(long minor, String currency) {
    BigDecimal major = new BigDecimal(Discrepancy.major(minor, currency));
    DecimalFormat format = new DecimalFormat("#,##0", DecimalFormatSymbols.getInstance(Locale.ROOT));
    format.setMinimumFractionDigits(major.scale());
    format.setMaximumFractionDigits(major.scale());
    return currency + " " + format.format(major);
  }

  /** A moment as the page shows it: "2026-03-01 09:15:02 UTC", to the second. */
  static String time(Instant instant) {
    return instant.toString().replace('T', ' ').replaceAll("\\.\\d+Z$|Z$", " UTC");
  }

  private static String day(String instant) {
    return instant.length() >= 10 ? instant.substring(0, 10) : instant;
  }

  static String esc(String s) {
    if (s == null) {
      return "";
    }
    StringBuilder out = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char ch = s.charAt(i);
      switch (ch) {
        case '<' -> out.append("&lt;");
        case '>' -> out.append("&gt;");
        case '&' -> out.append("&amp;");
        case '"' -> out.append("&quot;");
        case '\'' -> out.append("&#39;");
        default -> out.append(ch);
      }
    }
    return out.toString();
  }
}
