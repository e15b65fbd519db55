package dev.idemgate.reconciliation;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Reads stored runs and discrepancies back (JDBC, off any event loop), and resolves discrepancies. */
final class ReconciliationStore {
  private static final int FETCH = 1_000;

  private ReconciliationStore() {}

  /** Receives discrepancies one at a time, so a report of any length is written without holding it. */
  @FunctionalInterface
  interface Sink<T> {
    void accept(T item) throws Exception;
  }

  static Optional<ReconciliationRun> run(Connection c, String id) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("""
        SELECT id, source, status, settlement_file, provider, merchant_prefix, window_from, window_to,
               extract(epoch FROM settlement_lag)::bigint, as_of, summary::text, malformed_rows::text, error,
               started_at, finished_at
        FROM idemgate.reconciliation_runs WHERE id = ?""")) {
      s.setString(1, id);
      try (ResultSet rs = s.executeQuery()) {
        if (!rs.next()) {
          return Optional.empty();
        }
        return Optional.of(new ReconciliationRun(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4),
            rs.getString(5), rs.getString(6), instant(rs, 7), instant(rs, 8), rs.getLong(9), instant(rs, 10),
            rs.getString(11) == null ? null : new JsonObject(rs.getString(11)),
            rs.getString(12) == null ? new JsonArray() : new JsonArray(rs.getString(12)),
            rs.getString(13), instant(rs, 14), instant(rs, 15)));
      }
    }
  }

  /** The run's discrepancies by priority (1 first); {@code limit} 0 means all. Streams with a cursor. */
  static void discrepancies(Connection c, String runId, int limit, Sink<Discrepancy> sink) throws Exception {
    discrepancies(c, runId, false, limit, sink);
  }

  /** The same, with {@code openOnly} leaving out the discrepancies resolved. */
  static void discrepancies(Connection c, String runId, boolean openOnly, int limit, Sink<Discrepancy> sink)
      throws Exception {
    boolean autoCommit = c.getAutoCommit();
    c.setAutoCommit(false);
    try (PreparedStatement s = c.prepareStatement("""
        SELECT id, priority, score, category, status, value_minor, value_currency, payment_id, merchant_id,
               settlement_id, settlement_line, provider_reference, provider_key, ledger_amount, ledger_currency,
               ledger_status, settlement_amount, settlement_currency, settlement_status, match_method, confidence,
               occurred_at, evidence::text, remediation
        FROM idemgate.reconciliation_discrepancies WHERE run_id = ?"""
        + (openOnly ? " AND status = 'open'" : "") + " ORDER BY priority" + (limit > 0 ? " LIMIT " + limit : ""))) {
      s.setFetchSize(FETCH);
      s.setString(1, runId);
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          sink.accept(new Discrepancy(rs.getLong(1), rs.getInt(2), rs.getDouble(3), Category.valueOf(rs.getString(4)),
              Category.Remediation.valueOf(rs.getString(24)), rs.getString(5), rs.getLong(6), rs.getString(7), rs.getString(8), rs.getString(9), rs.getString(10),
              (Long) rs.getObject(11), rs.getString(12), rs.getString(13), (Long) rs.getObject(14), rs.getString(15),
              rs.getString(16), (Long) rs.getObject(17), rs.getString(18), rs.getString(19), rs.getString(20),
              (Double) rs.getObject(21), instant(rs, 22), new JsonObject(rs.getString(23))));
        }
      }
    } finally {
      c.commit();
      c.setAutoCommit(autoCommit);
    }
  }

  /**
   * The run's figures as they stand now, for the report's {@code summary.open} and
   * {@code summary.resolved}: the summary stored with the run counts every discrepancy found, and
   * an operator may resolve some after the run.
   *
   * <p>{@code value_at_stake} is the money of the open discrepancies per currency, counting each
   * payment and settlement row pair once: one pair can be two discrepancies (a declined payment
   * settled for another amount is a STATUS_MISMATCH of the settled amount and an AMOUNT_MISMATCH of
   * the difference; settled in another currency, a CURRENCY_MISMATCH of the ledger amount), and
   * their values are the same money. The pair counts as its first discrepancy by priority, an
   * AMOUNT_MISMATCH last: beside a status or currency mismatch the difference from the ledger's
   * amount is no money moved (declined here at 100, settled at 30: 30 were taken, not 70). Distinct
   * settlement rows of one payment (a duplicate settlement, a refund) are distinct money and each count.
   * {@code value_by_category} keeps each category's own money, so its categories overlap.
   */
  static JsonObject currentFigures(Connection c, String runId) throws SQLException {
    return currentFigures(c, List.of(runId)).get(runId);
  }

  /**
   * {@link #currentFigures(Connection, String)} of each run, in one statement (the list of runs reads
   * them for fifty runs at once); a run without discrepancies has zeros.
   */
  static Map<String, JsonObject> currentFigures(Connection c, List<String> runIds) throws SQLException {
    Map<String, JsonObject> figures = new HashMap<>();
    for (String runId : runIds) {
      JsonObject byCategory = new JsonObject();
      JsonObject valueByCategory = new JsonObject();
      for (Category category : Category.values()) {
        byCategory.put(category.name(), 0L);
        valueByCategory.put(category.name(), new JsonObject());
      }
      figures.put(runId, new JsonObject().put("resolved", 0L).put("open", new JsonObject().put("total", 0L)
          .put("by_category", byCategory).put("value_by_category", valueByCategory).put("value_at_stake", new JsonObject())));
    }
    if (runIds.isEmpty()) {
      return figures;
    }
    // PARTITION BY groups NULLs together: an orphan (no payment) is its own row's pair, and a missing
    // settlement (no row) its own payment's.
    try (PreparedStatement s = c.prepareStatement("""
        SELECT run_id, status, category, value_currency, count(*), sum(value_minor),
               sum(value_minor) FILTER (WHERE nth = 1)
        FROM (SELECT run_id, status, category, value_currency, value_minor,
                     row_number() OVER (PARTITION BY run_id, status, payment_id, settlement_line
                                        ORDER BY category = 'AMOUNT_MISMATCH', priority, id) AS nth
              FROM idemgate.reconciliation_discrepancies WHERE run_id = ANY (?)) d
        GROUP BY 1, 2, 3, 4""")) {
      s.setArray(1, c.createArrayOf("text", runIds.toArray()));
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          JsonObject run = figures.get(rs.getString(1));
          if (!"open".equals(rs.getString(2))) {
            run.put("resolved", run.getLong("resolved") + rs.getLong(5));
            continue;
          }
          JsonObject open = run.getJsonObject("open");
          String category = rs.getString(3);
          String currency = rs.getString(4);
          open.put("total", open.getLong("total") + rs.getLong(5));
          JsonObject byCategory = open.getJsonObject("by_category");
          byCategory.put(category, byCategory.getLong(category) + rs.getLong(5));
          open.getJsonObject("value_by_category").getJsonObject(category).put(currency, rs.getLong(6));
          if (rs.getObject(7) != null) {
            JsonObject atStake = open.getJsonObject("value_at_stake");
            atStake.put(currency, atStake.getLong(currency, 0L) + rs.getLong(7));
          }
        }
      }
    }
    return figures;
  }

  /** The matches that were not certain, lowest confidence first (the ones most worth a look). */
  static List<JsonObject> probableMatches(Connection c, String runId, int limit) throws SQLException {
    List<JsonObject> matches = new ArrayList<>();
    try (PreparedStatement s = c.prepareStatement("""
        SELECT settlement_line, settlement_id, payment_id, method, confidence FROM idemgate.reconciliation_matches
        WHERE run_id = ? ORDER BY confidence, settlement_line LIMIT ?""")) {
      s.setString(1, runId);
      s.setInt(2, limit);
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          matches.add(new JsonObject().put("settlement_line", rs.getLong(1)).put("settlement_id", rs.getString(2))
              .put("payment_id", rs.getString(3)).put("method", rs.getString(4))
              .put("confidence", Math.round(rs.getDouble(5) * 10_000) / 10_000.0));
        }
      }
    }
    return matches;
  }

  /** Marks a discrepancy resolved, with a note; false when the run has no such discrepancy. */
  static boolean resolve(Connection c, String runId, long id, String note) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("""
        UPDATE idemgate.reconciliation_discrepancies SET status = 'resolved', resolved_at = now(), resolution_note = ?
        WHERE run_id = ? AND id = ?""")) {
      s.setString(1, note);
      s.setString(2, runId);
      s.setLong(3, id);
      return s.executeUpdate() == 1;
    }
  }

  /** The latest runs, newest first. */
  static List<ReconciliationRun> recent(Connection c, int limit) throws SQLException {
    List<String> ids = new ArrayList<>();
    try (PreparedStatement s = c.prepareStatement(
        "SELECT id FROM idemgate.reconciliation_runs ORDER BY started_at DESC LIMIT ?")) {
      s.setInt(1, limit);
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          ids.add(rs.getString(1));
        }
      }
    }
    List<ReconciliationRun> runs = new ArrayList<>();
    for (String id : ids) {
      run(c, id).ifPresent(runs::add);
    }
    return runs;
  }

  private static java.time.Instant instant(ResultSet rs, int column) throws SQLException {
    Timestamp t = rs.getTimestamp(column);
    return t == null ? null : t.toInstant();
  }
}
