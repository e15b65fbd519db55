package dev.idemgate.reconciliation;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
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
    stream(c, runId, (openOnly ? " AND status = 'open'" : "") + " ORDER BY priority", limit, sink);
  }

  /** The run's resolved discrepancies, the latest resolution first, at most {@code limit}. */
  static void resolvedDiscrepancies(Connection c, String runId, int limit, Sink<Discrepancy> sink) throws Exception {
    stream(c, runId, " AND status = 'resolved' ORDER BY resolved_at DESC NULLS LAST, priority", limit, sink);
  }

  /** {@code order}: the rest of the WHERE clause and the ORDER BY, constant text, never a client's. */
  private static void stream(Connection c, String runId, String order, int limit, Sink<Discrepancy> sink)
      throws Exception {
    boolean autoCommit = c.getAutoCommit();
    c.setAutoCommit(false);
    try (PreparedStatement s = c.prepareStatement("""
        SELECT id, priority, score, category, status, value_minor, value_currency, payment_id, merchant_id,
               settlement_id, settlement_line, provider_reference, provider_key, ledger_amount, ledger_currency,
               ledger_status, settlement_amount, settlement_currency, settlement_status, match_method, confidence,
               occurred_at, evidence::text, remediation, resolved_at, resolution_note
        FROM idemgate.reconciliation_discrepancies WHERE run_id = ?""" + order + (limit > 0 ? " LIMIT " + limit : ""))) {
      s.setFetchSize(FETCH);
      s.setString(1, runId);
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          sink.accept(new Discrepancy(rs.getLong(1), rs.getInt(2), rs.getDouble(3), Category.valueOf(rs.getString(4)),
              Category.Remediation.valueOf(rs.getString(24)), rs.getString(5), rs.getLong(6), rs.getString(7), rs.getString(8), rs.getString(9), rs.getString(10),
              (Long) rs.getObject(11), rs.getString(12), rs.getString(13), (Long) rs.getObject(14), rs.getString(15),
              rs.getString(16), (Long) rs.getObject(17), rs.getString(18), rs.getString(19), rs.getString(20),
              (Double) rs.getObject(21), instant(rs, 22), new JsonObject(rs.getString(23)), instant(rs, 25), rs.getString(26)));
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
   * {@link #currentFigures(Connection, String)} of each run, in one statement that reads every
   * discrepancy of them; a run without discrepancies has zeros.
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

  /**
   * The figures of {@link #currentFigures(Connection, String)} for each listed run that has a summary,
   * read at a cost that follows what was resolved, not what was found. A run's summary holds what it
   * found (total, by_category, value_by_category, value_at_stake), so its open figures are those
   * minus its resolved discrepancies; its value_at_stake also needs the other discrepancies of the
   * resolved ones' pairs, since which of a pair counts depends on which of it is still open. Both
   * come through indexes (V7), so a list of fifty runs of fifty thousand discrepancies each reads
   * the resolved ones and their pairs, not two and a half million rows. A run whose summary has no
   * value_at_stake (made before it was stored) is read whole, by the grouped query of the report.
   */
  static Map<String, JsonObject> listedFigures(Connection c, List<ReconciliationRun> runs) throws SQLException {
    Map<String, JsonObject> figures = new HashMap<>();
    List<String> readWhole = new ArrayList<>();
    for (ReconciliationRun run : runs) {
      if (run.summary() == null) {
        continue;
      }
      if (run.summary().getValue("value_at_stake") instanceof JsonObject) {
        figures.put(run.id(), asFound(run.summary()));
      } else {
        readWhole.add(run.id());
      }
    }
    if (!figures.isEmpty()) {
      subtractResolved(c, figures);
    }
    figures.putAll(currentFigures(c, readWhole));
    return figures;
  }

  /** What a run found, as if nothing were resolved yet: the stored summary in the figures' shape. */
  private static JsonObject asFound(JsonObject summary) {
    JsonObject foundByCategory = summary.getJsonObject("by_category");
    JsonObject foundValues = summary.getJsonObject("value_by_category");
    JsonObject byCategory = new JsonObject();
    JsonObject valueByCategory = new JsonObject();
    for (Category category : Category.values()) {
      byCategory.put(category.name(), foundByCategory.getLong(category.name(), 0L));
      valueByCategory.put(category.name(), longs(foundValues.getJsonObject(category.name())));
    }
    return new JsonObject().put("resolved", 0L).put("open", new JsonObject().put("total", summary.getLong("total"))
        .put("by_category", byCategory).put("value_by_category", valueByCategory)
        .put("value_at_stake", longs(summary.getJsonObject("value_at_stake"))));
  }

  private static JsonObject longs(JsonObject amounts) {
    JsonObject copy = new JsonObject();
    if (amounts != null) {
      amounts.fieldNames().forEach(currency -> copy.put(currency, amounts.getLong(currency)));
    }
    return copy;
  }

  /**
   * Takes each run's resolved discrepancies out of its open figures. Every discrepancy of a pair
   * that holds a resolved one is read: the pair's money counted as found (its first discrepancy of
   * all) is taken out, and its money counted now (its first open one, if any) put back. A pair
   * without a resolved discrepancy counts the same either way and is not read. The pairs are
   * grouped as in {@link #currentFigures(Connection, List)}; they are found by coalesced keys, and
   * a pair another shares those with (a payment_id '' beside a NULL one) is read too, all open, and
   * changes nothing.
   */
  private static void subtractResolved(Connection c, Map<String, JsonObject> figures) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("""
        SELECT d.run_id, d.status, d.category, d.value_currency, d.value_minor,
               row_number() OVER (PARTITION BY d.run_id, d.payment_id, d.settlement_line
                                  ORDER BY d.category = 'AMOUNT_MISMATCH', d.priority, d.id),
               row_number() OVER (PARTITION BY d.run_id, d.status, d.payment_id, d.settlement_line
                                  ORDER BY d.category = 'AMOUNT_MISMATCH', d.priority, d.id)
        FROM (SELECT DISTINCT run_id, coalesce(payment_id, '') AS payment_id, coalesce(settlement_line, 0) AS settlement_line
              FROM idemgate.reconciliation_discrepancies WHERE run_id = ANY (?) AND status = 'resolved') p
        JOIN idemgate.reconciliation_discrepancies d ON d.run_id = p.run_id
         AND coalesce(d.payment_id, '') = p.payment_id AND coalesce(d.settlement_line, 0) = p.settlement_line""")) {
      s.setArray(1, c.createArrayOf("text", figures.keySet().toArray()));
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          JsonObject run = figures.get(rs.getString(1));
          JsonObject open = run.getJsonObject("open");
          String category = rs.getString(3);
          String currency = rs.getString(4);
          long value = rs.getLong(5);
          JsonObject atStake = open.getJsonObject("value_at_stake");
          if (rs.getLong(6) == 1) {
            atStake.put(currency, atStake.getLong(currency, 0L) - value);
          }
          if (!"open".equals(rs.getString(2))) {
            run.put("resolved", run.getLong("resolved") + 1);
            open.put("total", open.getLong("total") - 1);
            JsonObject byCategory = open.getJsonObject("by_category");
            byCategory.put(category, byCategory.getLong(category) - 1);
            JsonObject values = open.getJsonObject("value_by_category").getJsonObject(category);
            values.put(currency, values.getLong(currency, 0L) - value);
          } else if (rs.getLong(7) == 1) {
            atStake.put(currency, atStake.getLong(currency, 0L) + value);
          }
        }
      }
    }
    // Every discrepancy holds money (amounts are positive, a difference is not zero), so a currency
    // whose open money is now zero has no open discrepancy left: the grouped query leaves it out.
    for (JsonObject run : figures.values()) {
      JsonObject open = run.getJsonObject("open");
      for (String category : open.getJsonObject("value_by_category").fieldNames()) {
        withoutZeros(open.getJsonObject("value_by_category").getJsonObject(category));
      }
      withoutZeros(open.getJsonObject("value_at_stake"));
    }
  }

  private static void withoutZeros(JsonObject amounts) {
    amounts.fieldNames().removeIf(currency -> amounts.getLong(currency) == 0L);
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

  /** What became of a resolution sent for a discrepancy. */
  sealed interface Resolution {
    /** Resolved now, at {@code at} (PostgreSQL's clock), with the note sent. */
    record Resolved(Instant at) implements Resolution {}

    /** Resolved before, by an operator or carried over from an earlier run; left as it was. */
    record AlreadyResolved(Instant at, String note) implements Resolution {}

    /** The run has no such discrepancy. */
    record NotFound() implements Resolution {}
  }

  /**
   * Marks an open discrepancy resolved, with a note. A resolved one is left as it is: its note is the
   * audit record of what was done about it, which a second resolution used to overwrite. The update
   * is conditional on the status, so of two sent at once one resolves and the other finds it resolved;
   * that one's read is a statement of its own, so it sees what the first committed.
   */
  static Resolution resolve(Connection c, String runId, long id, String note) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("""
        UPDATE idemgate.reconciliation_discrepancies SET status = 'resolved', resolved_at = now(), resolution_note = ?
        WHERE run_id = ? AND id = ? AND status = 'open' RETURNING resolved_at""")) {
      s.setString(1, note);
      s.setString(2, runId);
      s.setLong(3, id);
      try (ResultSet rs = s.executeQuery()) {
        if (rs.next()) {
          return new Resolution.Resolved(instant(rs, 1));
        }
      }
    }
    try (PreparedStatement s = c.prepareStatement("""
        SELECT resolved_at, resolution_note FROM idemgate.reconciliation_discrepancies WHERE run_id = ? AND id = ?""")) {
      s.setString(1, runId);
      s.setLong(2, id);
      try (ResultSet rs = s.executeQuery()) {
        return rs.next() ? new Resolution.AlreadyResolved(instant(rs, 1), rs.getString(2)) : new Resolution.NotFound();
      }
    }
  }

  /** What became of a request to delete a run. */
  enum Deletion {
    DELETED,
    /** Under way: its transaction holds its row ({@link Reconciler#run}); or another deletion of it is. */
    UNDER_WAY,
    /** Another run held the settlement history for {@link #HISTORY_WAIT_ON_DELETE_SECONDS}. */
    HISTORY_BUSY,
    /** Another transaction held a lock the deletion needed (a row of the run's, say) for {@link #HISTORY_WAIT_ON_DELETE_SECONDS}. */
    ROW_HELD,
    NOT_FOUND
  }

  /**
   * How long a deletion waits for a run reading or recording the settlement history: the tail of a
   * run, seconds for a day's file. It takes the history as a run does, so that no run reads a
   * deleted run's settlements halfway (its report would name a run that is gone).
   */
  static final int HISTORY_WAIT_ON_DELETE_SECONDS = 10;

  /**
   * Deletes a run with everything it found and recorded: its discrepancies (resolved ones and their
   * notes too), probable matches and the settlements it recorded for later runs (ON DELETE CASCADE),
   * in one transaction, holding the settlement history as a run does. A run under way holds its row
   * locked until it ends, and is refused without waiting; a row of the run another transaction holds
   * is waited for as long as the history. A RUNNING run whose row no one holds is
   * either one a process left when it ended mid-run (its work rolled back with it), deleted like any
   * other, or an upload's run not yet begun, deleted before it begins (it then fails, "deleted
   * before it began", and records nothing).
   */
  static Deletion delete(Connection c, String id) throws SQLException {
    boolean autoCommit = c.getAutoCommit();
    c.setAutoCommit(false);
    try {
      try (PreparedStatement s = c.prepareStatement(
          "SELECT 1 FROM idemgate.reconciliation_runs WHERE id = ? FOR UPDATE NOWAIT")) {
        s.setString(1, id);
        try (ResultSet rs = s.executeQuery()) {
          if (!rs.next()) {
            c.rollback();
            return Deletion.NOT_FOUND;
          }
        }
      } catch (SQLException e) {
        if (Reconciler.LOCK_NOT_AVAILABLE.equals(e.getSQLState())) { // the run's own transaction holds it
          c.rollback();
          return Deletion.UNDER_WAY;
        }
        throw e;
      }
      try {
        Reconciler.holdTheSettlementHistoryToDelete(c, Duration.ofSeconds(HISTORY_WAIT_ON_DELETE_SECONDS));
      } catch (SQLException e) {
        if (Reconciler.LOCK_NOT_AVAILABLE.equals(e.getSQLState())) {
          c.rollback();
          return Deletion.HISTORY_BUSY;
        }
        throw e;
      }
      try (PreparedStatement s = c.prepareStatement("DELETE FROM idemgate.reconciliation_runs WHERE id = ?")) {
        s.setString(1, id);
        s.executeUpdate();
      } catch (SQLException e) {
        if (Reconciler.LOCK_NOT_AVAILABLE.equals(e.getSQLState())) {
          c.rollback();
          return Deletion.ROW_HELD;
        }
        throw e;
      }
      c.commit();
      return Deletion.DELETED;
    } catch (SQLException | RuntimeException e) {
      c.rollback();
      throw e;
    } finally {
      c.setAutoCommit(autoCommit);
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

  private static Instant instant(ResultSet rs, int column) throws SQLException {
    Timestamp t = rs.getTimestamp(column);
    return t == null ? null : t.toInstant();
  }
}
