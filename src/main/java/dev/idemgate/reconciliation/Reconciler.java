package dev.idemgate.reconciliation;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Currency;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.postgresql.PGConnection;
import org.postgresql.copy.PGCopyOutputStream;

/**
 * Reconciles one settlement file against the ledger (DESIGN §6), set-based inside PostgreSQL:
 * the file is streamed through COPY into a temporary staging table, the ledger window is copied
 * into another, and matching and classification are joins. The JVM holds one record at a time,
 * the first malformed lines and the Fellegi–Sunter pattern counts, whatever the file's size.
 *
 * <p>Matching goes from certain to probable: provider reference (exact, then without case or
 * punctuation), provider key, then Fellegi–Sunter record linkage over amount, currency, merchant
 * and time for the rows still unmatched on both sides. A probable match is taken only at or above
 * {@code match_threshold}, or when a row and a payment are each other's only candidate of the same
 * merchant, amount and currency; a weaker best candidate is named in the discrepancy for a person
 * to check, never advised to be refunded.
 *
 * <p>The whole run is one transaction: its discrepancies appear together with the run's COMPLETED
 * status, or not at all (FAILED).
 */
public final class Reconciler {
  /** The malformed lines kept in the run and reports; the rest are only counted. */
  static final int MALFORMED_KEPT = 1_000;
  /** Fields compared by the probabilistic step, with their number of agreement levels. */
  static final List<String> FIELDS = List.of("amount", "currency", "merchant", "time");
  private static final int[] LEVELS = {4, 2, 2, 3};
  /**
   * What m is believed to be before EM sees the file: amount exact / within a fifth of the
   * tolerance / within the tolerance / further; currency same / different; merchant same / absent
   * from the file; settled within a day / within the lag / before the charge.
   */
  private static final double[][] PRIOR_M = {{0.9, 0.04, 0.03, 0.03}, {0.97, 0.03}, {0.95, 0.05}, {0.75, 0.2, 0.05}};
  /** The same for u: two payments that are not each other's rarely agree on amount. */
  private static final double[][] PRIOR_U = {{0.01, 0.01, 0.04, 0.94}, {0.6, 0.4}, {0.95, 0.05}, {0.3, 0.5, 0.2}};
  /** How many candidate pairs' worth of evidence the prior counts for. */
  private static final double PRIOR_WEIGHT = 20;
  /** Bounds on the share of unmatched rows believed to have a partner, so that "no partner" always keeps some belief. */
  private static final double MAX_PARTNER_SHARE = 0.9;
  /**
   * The confidence recorded for a row and a payment matched as each other's only candidate with the
   * same merchant, amount and currency ({@code sole_exact_amount}): not computed, set as for a
   * reference that differs only in spelling, below 1 so that the match is listed for audit.
   */
  static final double SOLE_EXACT_AMOUNT_CONFIDENCE = 0.99;
  /** The settled rows matched outside the settlement lag listed in the summary; the rest are counted. */
  static final int OUTSIDE_LAG_LISTED = 20;
  /**
   * The least distance from the middle half of a file's settled_at at which a row is taken for a
   * wrong date rather than a late one. A placeholder (1970-01-01) or a wrong year is a year or more
   * away; a genuine row of a month's file can be weeks from the middle half when that half is narrow:
   * a small file (one merchant's month), or a daily file whose rows nearly all share one date, where
   * the interquartile range is nil. At 7 days such rows were dropped, with what they showed.
   */
  static final Duration STRAY_MARGIN = Duration.ofDays(90);
  private static final SecureRandom RANDOM = new SecureRandom();
  /**
   * The transaction-level advisory lock a run holds from reading the settlement history to its
   * commit ({@link #waitForTheSettlementHistory}): the two-key form, as recovery's charge locks
   * ({@code RecoveryStore#LOCK_CHARGE}), with a first key of its own ('RECN' in ASCII; theirs is
   * 'INTG'), so that it shares nothing with them nor with Flyway's lock (one bigint key).
   */
  static final int HISTORY_LOCK_KEY1 = 0x5245434E;
  /** The second key of {@link #HISTORY_LOCK_KEY1}'s lock: the history is one thing to lock. */
  static final int HISTORY_LOCK_KEY2 = 1;
  /** PostgreSQL's SQLSTATE for a lock not taken within {@code lock_timeout}, or at once with {@code NOWAIT}. */
  static final String LOCK_NOT_AVAILABLE = "55P03";
  /**
   * How long a run waits for another to finish with the history. A run holds it for the tail of its
   * work (classifying, the discrepancies, the summary, recording its rows, the commit), not while it
   * reads the file or matches. Shorter than the JDBC read deadline ({@link Jdbc}).
   */
  static final Duration HISTORY_WAIT = Duration.ofMinutes(10);
  /**
   * How long PostgreSQL keeps the session of a transaction that holds reconciliation's locks (a run,
   * a deletion) once it sits idle in it, before ending the session and its locks
   * ({@link #endTheSessionIfLeftIdle}). Such a transaction sends its statements back to back, so a
   * session idle that long belongs to a process that is gone without closing its connection (its
   * machine lost, the network cut). Without it PostgreSQL kept such a run's row (the run "under way"
   * to DELETE and run_retention) and, in a run's tail, the settlement history, which every other run
   * then waited 10 minutes for and failed, until TCP keepalive noticed: about two hours with Linux's
   * defaults. Set per transaction, not per session: the CLI reads its report through a cursor whose
   * pauses are the reader's (a pager), and a pooler in transaction mode would carry a session setting
   * to other clients.
   */
  static final Duration IDLE_IN_TRANSACTION = Duration.ofMinutes(5);
  /** How long the deletion of old runs after a run waits for another run's tail; past it, the next run deletes them. */
  static final Duration HISTORY_WAIT_TO_DELETE_OLD_RUNS = Duration.ofSeconds(10);

  private final ReconciliationSettings settings;
  /** How long after its claim a charge may still land ({@code GatewayConfig#chargeInFlight}). */
  private final Duration chargeInFlight;

  public Reconciler(ReconciliationSettings settings, Duration chargeInFlight) {
    this.settings = settings;
    this.chargeInFlight = chargeInFlight;
  }

  /**
   * The result of a run: its id, the summary stored with it, the malformed lines kept, and what
   * became of the runs older than run_retention (null when every run is kept).
   */
  public record Outcome(String runId, JsonObject summary, List<MalformedRow> malformed, OldRuns oldRuns) {
    Outcome withOldRuns(OldRuns oldRuns) {
      return new Outcome(runId, summary, malformed, oldRuns);
    }
  }

  /**
   * The runs older than run_retention after a run: how many were deleted, or why none was (the run
   * itself stands; the next run tries again). The caller says it: the CLI on standard error, where
   * a log line would go to standard output with the report; the API in the log.
   */
  public record OldRuns(Duration retention, int deleted, String failure) {
    /** One line for a person; null when there is nothing to say. */
    public String describe() {
      if (failure != null) {
        return (deleted == 0 ? "runs older than run_retention (" + asGiven() + ") were not deleted"
            : deletedRuns() + "; the others were not") + "; the next run tries again: " + failure;
      }
      return deleted == 0 ? null : deletedRuns() + ", with their discrepancies and recorded settlements";
    }

    private String deletedRuns() {
      return "deleted " + deleted + " reconciliation run" + (deleted == 1 ? "" : "s") + " that started more than "
          + "run_retention (" + asGiven() + ") ago";
    }

    /** The retention as the setting writes it: in its largest whole unit (36h, 400d). */
    private String asGiven() {
      long seconds = retention.toSeconds();
      return seconds % 86_400 == 0 ? seconds / 86_400 + "d" : seconds % 3_600 == 0 ? seconds / 3_600 + "h"
          : seconds % 60 == 0 ? seconds / 60 + "m" : seconds + "s";
    }
  }

  /** Records a new RUNNING run (committed at once, so that it can be looked up while it runs). */
  public String createRun(Connection c, ReconciliationRequest r) throws SQLException {
    byte[] random = new byte[12];
    RANDOM.nextBytes(random);
    String id = "rec_" + HexFormat.of().formatHex(random);
    c.setAutoCommit(true);
    try (PreparedStatement s = c.prepareStatement("""
        INSERT INTO idemgate.reconciliation_runs (id, source, status, settlement_file, provider, merchant_prefix,
          settlement_lag, as_of)
        VALUES (?, ?, 'RUNNING', ?, ?, ?, make_interval(secs => ?), ?)""")) {
      s.setString(1, id);
      s.setString(2, r.source().column());
      s.setString(3, r.settlementName());
      s.setString(4, r.provider().orElse(null));
      s.setString(5, r.merchantPrefix().orElse(null));
      s.setLong(6, settings.settlementLag().toSeconds());
      s.setTimestamp(7, Timestamp.from(r.asOf()));
      s.executeUpdate();
    }
    return id;
  }

  /**
   * Reads the file, matches, stores the discrepancies and completes the run. On failure the run's
   * work is rolled back, the run is marked FAILED with a one-line reason and the failure rethrown.
   * The run's row is locked for the whole transaction: that is how a deletion tells a run under way
   * from one a process left RUNNING when it ended ({@link ReconciliationStore#delete}). Once it has
   * committed, runs older than {@code run_retention} are deleted ({@link #deleteRunsOlderThan}).
   */
  public Outcome run(Connection c, String runId, SettlementReader reader, ReconciliationRequest r) throws SQLException {
    try {
      c.setAutoCommit(false);
      endTheSessionIfLeftIdle(c, IDLE_IN_TRANSACTION);
      try (PreparedStatement s = c.prepareStatement(
          "SELECT 1 FROM idemgate.reconciliation_runs WHERE id = ? FOR UPDATE")) {
        s.setString(1, runId);
        try (ResultSet rs = s.executeQuery()) {
          if (!rs.next()) {
            throw new SQLException("run " + runId + " was deleted before it began");
          }
        }
      }
      Outcome outcome = reconcile(c, runId, reader, r);
      c.commit();
      return settings.runRetention().isZero() ? outcome : outcome.withOldRuns(
          deleteRunsOlderThan(c, settings.runRetention(), HISTORY_WAIT_TO_DELETE_OLD_RUNS, runId));
    } catch (SQLException | RuntimeException e) {
      c.rollback();
      c.setAutoCommit(true);
      try (PreparedStatement s = c.prepareStatement(
          "UPDATE idemgate.reconciliation_runs SET status = 'FAILED', error = ?, finished_at = now() WHERE id = ?")) {
        String reason = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage().lines().findFirst().orElse("");
        s.setString(1, reason);
        s.setString(2, runId);
        s.executeUpdate();
      }
      throw e;
    }
  }

  /**
   * Deletes the runs that started more than {@code retention} ago, oldest first, with their
   * discrepancies, probable matches and recorded settlements (ON DELETE CASCADE). Each run goes in a
   * transaction of its own holding the settlement history as a run does
   * ({@link #waitForTheSettlementHistory}): no run reads an old run's settlements halfway through
   * their deletion, and a run waiting for the history gets it between two deletions (PostgreSQL
   * grants a released lock to its waiters first), so turning the retention on over years of runs
   * holding millions of settlements never holds it for all of them at once, and what was deleted
   * before a failure stays deleted. A run under way holds its row, and is passed over (SKIP LOCKED)
   * to be deleted by a later run; a RUNNING row nobody holds is a process's that ended mid-run,
   * deleted like {@link ReconciliationStore#delete} deletes one. The run that has just finished,
   * {@code finishedRun} (null for none), is kept whenever it started: its caller reads its report next.
   *
   * <p>That run has committed: a failure here leaves the rest to the next run, never
   * fails that one.
   *
   * @return how many runs were deleted, and why the others were not when a deletion failed or
   *     another run held the history for {@code wait}
   */
  static OldRuns deleteRunsOlderThan(Connection c, Duration retention, Duration wait, String finishedRun) {
    int deleted = 0;
    try {
      while (deleteOldestRunOlderThan(c, retention, wait, finishedRun)) {
        deleted++;
      }
      return new OldRuns(retention, deleted, null);
    } catch (SQLException | RuntimeException e) {
      // The first line only: a PostgreSQL error's Detail and Where lines can quote the values of a row.
      return new OldRuns(retention, deleted, String.valueOf(e.getMessage()).lines().findFirst().orElse(""));
    }
  }

  /** One run of {@link #deleteRunsOlderThan}, in its own transaction; false when none is left to delete. */
  private static boolean deleteOldestRunOlderThan(Connection c, Duration retention, Duration wait, String finishedRun)
      throws SQLException {
    c.setAutoCommit(false);
    String waitingFor = "the settlement history";
    try {
      holdTheSettlementHistoryToDelete(c, wait);
      waitingFor = "a row of a run to delete";
      int deleted;
      try (PreparedStatement s = c.prepareStatement("""
          DELETE FROM idemgate.reconciliation_runs WHERE id = (
            SELECT id FROM idemgate.reconciliation_runs
            WHERE started_at < now() - make_interval(secs => ?) AND id IS DISTINCT FROM ?
            ORDER BY started_at LIMIT 1 FOR UPDATE SKIP LOCKED)""")) {
        s.setLong(1, retention.toSeconds());
        s.setString(2, finishedRun);
        deleted = s.executeUpdate();
      }
      c.commit();
      return deleted > 0;
    } catch (SQLException e) {
      rollbackKeeping(c, e);
      if (LOCK_NOT_AVAILABLE.equals(e.getSQLState())) {
        throw new SQLException("another transaction held " + waitingFor + " for " + wait.toSeconds() + " s",
            e.getSQLState(), e);
      }
      throw e;
    } catch (RuntimeException e) {
      rollbackKeeping(c, e);
      throw e;
    } finally {
      try {
        c.setAutoCommit(true);
      } catch (SQLException e) {
        // A broken connection: the failure in flight says why, or the next deletion's first statement.
      }
    }
  }

  /** Rolls back; a rollback that fails too (the connection broken) is kept with {@code cause}, not put in its place. */
  private static void rollbackKeeping(Connection c, Exception cause) {
    try {
      c.rollback();
    } catch (SQLException e) {
      cause.addSuppressed(e);
    }
  }

  /**
   * For the rest of the transaction, PostgreSQL ends the session once it has sat idle in the
   * transaction for {@code idle}, and with it the transaction's locks ({@link #IDLE_IN_TRANSACTION}).
   */
  static void endTheSessionIfLeftIdle(Connection c, Duration idle) throws SQLException {
    execute(c, "SET LOCAL idle_in_transaction_session_timeout = " + idle.toMillis());
  }

  private Outcome reconcile(Connection c, String runId, SettlementReader reader, ReconciliationRequest r) throws SQLException {
    // How far back a row's payment is looked for, and past which a settlement is called late: never
    // less than the configured lag, whatever this run's (a 0s given to see missing settlements sooner).
    Duration lag = settings.lookbackLag();
    // Server-side memory for this batch session: temporary tables of a million rows stay in
    // memory instead of spilling through the default 8 MB of temp buffers.
    execute(c, "SET temp_buffers = '256MB'");
    execute(c, "SET LOCAL work_mem = '256MB'");
    execute(c, """
        CREATE TEMP TABLE recon_stage (
          line bigint NOT NULL, settlement_id text NOT NULL, provider_reference text, ref_key text,
          provider_key text, merchant_id text, amount bigint NOT NULL, currency text NOT NULL,
          status text NOT NULL, settled_at timestamptz NOT NULL, whole_day boolean NOT NULL) ON COMMIT DROP""");
    Ingest ingest = ingest(c, reader, r);
    dropRowsThatAreNotSettlements(c, ingest, reader);

    // The ledger window, for matching: a row may settle a payment charged up to the lag before it.
    Instant from = r.from().orElseGet(() -> ingest.first == null ? r.asOf() : ingest.first.minus(lag));
    Instant to = r.to().orElseGet(() -> ingest.last == null ? r.asOf() : ingest.coveredUntil.plus(lag));
    // A payment is expected in this file only if the file covers its whole lag: charged at or after
    // the file's first settlement (one charged earlier may have settled in an earlier file), and
    // the lag before the file ends (and before now). An explicit --from says where to start instead.
    // A file whose last settled_at is a bare date ends with that day, not at its start.
    Instant missingFrom = r.from().orElseGet(() -> ingest.first == null ? r.asOf() : ingest.first);
    Instant periodEnd = ingest.last != null ? ingest.coveredUntil : r.to().orElse(r.asOf());
    Instant missingCutoff = (periodEnd.isBefore(r.asOf()) ? periodEnd : r.asOf()).minus(settings.settlementLag());

    loadLedger(c, r, from, to);
    execute(c, "ANALYZE recon_stage");
    execute(c, "ANALYZE recon_ledger");
    execute(c, "CREATE TEMP TABLE recon_match (line bigint PRIMARY KEY, payment_id text NOT NULL, method text NOT NULL, "
        + "confidence double precision NOT NULL) ON COMMIT DROP");
    matchByReference(c);
    matchByProviderKey(c);
    // A refund or chargeback can come months after its charge, and a settlement days after it (a long
    // weekend) or with a wrong date: a row whose reference or key names a payment outside the window
    // is that payment's, not an orphan.
    if (loadPaymentsBeyondWindow(c, r, from, to) > 0) {
      matchByReference(c);
      matchByProviderKey(c);
    }
    execute(c, "CREATE INDEX ON recon_match (payment_id)");
    execute(c, "ANALYZE recon_match");
    JsonObject model = matchProbabilistically(c);
    execute(c, "ANALYZE recon_match");
    waitForTheSettlementHistory(c);
    loadEarlierSettlements(c);
    classifyMatchedRows(c);
    insertDiscrepancies(c, runId, missingFrom, missingCutoff);
    prioritise(c, runId, r.asOf());
    long resolvedEarlier = carryOverResolutions(c, runId);
    saveProbableMatches(c, runId);

    JsonObject summary = summarise(c, runId, ingest, model, r.asOf()).put("resolved_earlier", resolvedEarlier)
        .put("missing_window", new JsonObject().put("created_from", missingFrom.toString())
            .put("created_to", missingCutoff.toString()));
    JsonObject outsideLag = settledOutsideLag(c, lag);
    summary.put("settled_outside_lag", outsideLag)
        .put("warnings", new JsonArray(warnings(c, summary, outsideLag, lag, from, to)));
    recordSettlements(c, runId);
    JsonArray malformed = new JsonArray(ingest.malformed.stream()
        .map(m -> new JsonObject().put("line", m.line()).put("reason", m.reason())).collect(Collectors.toList()));
    try (PreparedStatement s = c.prepareStatement("""
        UPDATE idemgate.reconciliation_runs SET status = 'COMPLETED', window_from = ?, window_to = ?,
          summary = ?::jsonb, malformed_rows = ?::jsonb, finished_at = now()
        WHERE id = ?""")) {
      s.setTimestamp(1, Timestamp.from(from));
      s.setTimestamp(2, Timestamp.from(to));
      s.setString(3, summary.encode());
      s.setString(4, malformed.encode());
      s.setString(5, runId);
      s.executeUpdate();
    }
    return new Outcome(runId, summary, List.copyOf(ingest.malformed), null);
  }

  /** What the file held. */
  private static final class Ingest {
    long read;
    long staged;
    long malformedCount;
    long filteredOut;
    /** Of malformedCount: lines whose settlement_id an earlier line already had. */
    long repeated;
    /** The span of settled_at of the rows reconciled, set once the rows that are not settlements are dropped. */
    Instant first;
    Instant last;
    /** The end of the time the rows cover: last, or the end of its day when a row of that day has a bare date. */
    Instant coveredUntil;
    final List<MalformedRow> malformed = new ArrayList<>();
  }

  private static Ingest ingest(Connection c, SettlementReader reader, ReconciliationRequest r) throws SQLException {
    Ingest ingest = new Ingest();
    String prefix = r.merchantPrefix().orElse(null);
    PGConnection pg = c.unwrap(PGConnection.class);
    StringBuilder line = new StringBuilder(256);
    try (Writer out = new BufferedWriter(new OutputStreamWriter(new PGCopyOutputStream(pg,
        "COPY recon_stage (line, settlement_id, provider_reference, ref_key, provider_key, merchant_id, amount, "
            + "currency, status, settled_at, whole_day) FROM STDIN", 1 << 16), StandardCharsets.UTF_8), 1 << 16)) {
      for (SettlementReader.Result result = reader.next(); result != null; result = reader.next()) {
        ingest.read++;
        if (result instanceof SettlementReader.Skipped skipped) {
          ingest.malformedCount++;
          if (ingest.malformed.size() < MALFORMED_KEPT) {
            ingest.malformed.add(skipped.malformed());
          }
          continue;
        }
        SettlementRow row = ((SettlementReader.Valid) result).row();
        if (prefix != null && (row.merchantId() == null || !row.merchantId().startsWith(prefix))) {
          ingest.filteredOut++;
          continue;
        }
        ingest.staged++;
        line.setLength(0);
        line.append(row.line());
        field(line, row.settlementId());
        field(line, row.providerReference());
        field(line, row.referenceKey());
        field(line, row.providerKey());
        field(line, row.merchantId());
        line.append('\t').append(row.amount());
        field(line, row.currency());
        field(line, row.status());
        field(line, row.settledAt().toString());
        line.append('\t').append(row.wholeDay() ? 't' : 'f').append('\n');
        out.append(line);
      }
    } catch (IOException e) {
      throw copyFailed(e);
    } finally {
      reader.close();
    }
    return ingest;
  }

  /**
   * A COPY failure said without the row: PostgreSQL's message quotes the value it refused and its
   * context ("Where: COPY recon_stage, line 3: ...") the whole staged row, which may hold anything a
   * provider put in a reference (a card number). The run's stored error, the log and standard error
   * get the SQLSTATE and the first line of the message with every quoted value left out.
   */
  static SQLException copyFailed(IOException e) {
    Throwable cause = e.getCause() instanceof SQLException sql ? sql : e;
    String state = cause instanceof SQLException sql && sql.getSQLState() != null ? " (SQLSTATE " + sql.getSQLState() + ")" : "";
    String message = String.valueOf(cause.getMessage()).lines().findFirst().orElse("");
    String withoutValues = message.replaceAll("\"[^\"]*\"?", "\"…\"");
    if (withoutValues.length() > 200) {
      withoutValues = withoutValues.substring(0, 200) + "…";
    }
    // Not chained: the cause's message is the one that must not travel on.
    return new SQLException("COPY of the settlement file into PostgreSQL failed" + state + ": " + withoutValues,
        cause instanceof SQLException sql ? sql.getSQLState() : null);
  }

  /**
   * Takes out of the staging table, and reports as malformed with their line, the rows that are not
   * settlements of their own:
   *
   * <ul>
   *   <li>a settlement_id already read on an earlier line (a file re-sent or concatenated). The
   *       first line with the id is the settlement; a later one, identical or not, is no second
   *       settlement. With other content it is a contradiction in the file, reported with the fields
   *       that differ, never a double charge;
   *   <li>a settled_at far outside the file's period (a placeholder such as 1970-01-01, a wrong year):
   *       more than three interquartile ranges, and at least {@link #STRAY_MARGIN}, from the middle
   *       half of the rows. It would otherwise stretch the ledger and MISSING windows to that date.
   * </ul>
   *
   * <p>Invariant from here on: settlement_id is unique in recon_stage, so two rows matched to one
   * payment are two settlements; and the file's span (first, last) is taken from the rows kept.
   */
  private static void dropRowsThatAreNotSettlements(Connection c, Ingest ingest, SettlementReader reader)
      throws SQLException {
    execute(c, "ANALYZE recon_stage");
    execute(c, """
        CREATE TEMP TABLE recon_dropped (line bigint NOT NULL, settlement_id text NOT NULL, first_line bigint,
          settled_at timestamptz, q1 timestamptz, q3 timestamptz, differs text) ON COMMIT DROP""");
    // Stray dates first: a repeated id whose first line is a stray leaves its later line as the
    // settlement, instead of losing both (the later one as "repeated", the first as a stray).
    try (PreparedStatement s = c.prepareStatement("""
        INSERT INTO recon_dropped (line, settlement_id, settled_at, q1, q3)
        SELECT s.line, s.settlement_id, s.settled_at, q.q1, q.q3
        FROM recon_stage s,
             (SELECT percentile_disc(0.25) WITHIN GROUP (ORDER BY settled_at) AS q1,
                     percentile_disc(0.75) WITHIN GROUP (ORDER BY settled_at) AS q3 FROM recon_stage) q
        WHERE s.settled_at < q.q1 - greatest(3 * (q.q3 - q.q1), make_interval(secs => ?))
           OR s.settled_at > q.q3 + greatest(3 * (q.q3 - q.q1), make_interval(secs => ?))""")) {
      s.setLong(1, STRAY_MARGIN.toSeconds());
      s.setLong(2, STRAY_MARGIN.toSeconds());
      s.executeUpdate();
    }
    execute(c, "DELETE FROM recon_stage s USING recon_dropped d WHERE s.line = d.line");
    execute(c, """
        INSERT INTO recon_dropped (line, settlement_id, first_line, settled_at, differs)
        SELECT s.line, s.settlement_id, f.line AS first_line, s.settled_at,
               concat_ws(', ',
                 CASE WHEN s.provider_reference IS DISTINCT FROM f.provider_reference THEN 'provider_reference' END,
                 CASE WHEN s.provider_key IS DISTINCT FROM f.provider_key THEN 'provider_key' END,
                 CASE WHEN s.merchant_id IS DISTINCT FROM f.merchant_id THEN 'merchant_id' END,
                 CASE WHEN s.amount <> f.amount THEN 'amount' END,
                 CASE WHEN s.currency <> f.currency THEN 'currency' END,
                 CASE WHEN s.status <> f.status THEN 'status' END,
                 CASE WHEN s.settled_at <> f.settled_at THEN 'settled_at' END) AS differs
        FROM (SELECT settlement_id, min(line) AS first_line FROM recon_stage
              GROUP BY settlement_id HAVING count(*) > 1) d
        JOIN recon_stage f ON f.settlement_id = d.settlement_id AND f.line = d.first_line
        JOIN recon_stage s ON s.settlement_id = d.settlement_id AND s.line > d.first_line""");
    execute(c, "DELETE FROM recon_stage s USING recon_dropped d WHERE s.line = d.line AND d.q1 IS NULL");
    List<MalformedRow> dropped = new ArrayList<>();
    try (PreparedStatement s = c.prepareStatement(
        // A prefix of the id only (what echo looks at): a thousand reasons each holding a 1 MiB id would take a gigabyte.
        "SELECT line, left(settlement_id, ?), first_line, differs, settled_at, q1, q3 FROM recon_dropped ORDER BY line LIMIT ?")) {
      s.setInt(1, SettlementReader.ECHO_SCANNED);
      s.setInt(2, MALFORMED_KEPT);
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          String id = reader.echo(rs.getString(2));
          String reason;
          if (rs.getObject(6) == null) {
            String differs = rs.getString(4);
            reason = differs.isEmpty()
                ? "repeats settlement_id '" + id + "' of line " + rs.getLong(3) + ": the same settlement read twice, not a second one"
                : "settlement_id '" + id + "' is already on line " + rs.getLong(3) + " with another " + differs
                    + ": the file contradicts itself; line " + rs.getLong(3) + " is reconciled, this one is not";
          } else {
            reason = "settled_at " + instant(rs, 5) + " is far outside the file's period (half of its rows settled from "
                + instant(rs, 6) + " to " + instant(rs, 7) + "): taken for a wrong date, not reconciled";
          }
          dropped.add(new MalformedRow(rs.getLong(1), reason));
        }
      }
    }
    long repeated = count(c, "SELECT count(*) FROM recon_dropped WHERE q1 IS NULL");
    long total = count(c, "SELECT count(*) FROM recon_dropped");
    ingest.repeated = repeated;
    ingest.malformedCount += total;
    ingest.staged -= total;
    if (total > 0) {
      // Both lists are in line order and hold the first lines of their kind: the first of the merge are the first of all.
      dropped.addAll(ingest.malformed);
      dropped.sort(Comparator.comparingLong(MalformedRow::line));
      ingest.malformed.clear();
      ingest.malformed.addAll(dropped.subList(0, Math.min(MALFORMED_KEPT, dropped.size())));
    }
    try (Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("SELECT min(settled_at), max(settled_at), "
             + "max(settled_at + CASE WHEN whole_day THEN interval '1 day' ELSE interval '0' END) FROM recon_stage")) {
      rs.next();
      ingest.first = instant(rs, 1);
      ingest.last = instant(rs, 2);
      ingest.coveredUntil = instant(rs, 3);
    }
  }

  /** A timestamptz column as an instant (through OffsetDateTime: no calendar shift for early dates), or null. */
  private static Instant instant(ResultSet rs, int column) throws SQLException {
    OffsetDateTime at = rs.getObject(column, OffsetDateTime.class);
    return at == null ? null : at.toInstant();
  }

  /** One field of COPY's text format: tab-separated, backslash escapes, \N for null. */
  private static void field(StringBuilder out, String value) {
    out.append('\t');
    if (value == null) {
      out.append("\\N");
      return;
    }
    for (int i = 0; i < value.length(); i++) {
      char ch = value.charAt(i);
      switch (ch) {
        case '\\' -> out.append("\\\\");
        case '\t' -> out.append("\\t");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        default -> out.append(ch);
      }
    }
  }

  /**
   * The ledger window: payments created in [from, to) (and of the provider, and the merchants,
   * when asked), each flagged stuck as {@link #LEDGER_PAYMENTS} says; plus the records still
   * PROCESSING or PENDING that have no payment row (of the same provider and merchants), so that a
   * settlement of such a charge is recognised by its provider key instead of being called an orphan.
   * Such a PROCESSING claim is stuck, once its charge can no longer be on its way
   * ({@link #chargeInFlight}), if its lease ran out or recovery took it over, as
   * {@code /admin/pending} lists it. A PENDING record always has its payment row, written with it; one
   * without (the row lost to a restore or a hand repair) is a charge whose outcome nobody knows, stuck,
   * and was left out of every category before.
   */
  private void loadLedger(Connection c, ReconciliationRequest r, Instant from, Instant to) throws SQLException {
    execute(c, """
        CREATE TEMP TABLE recon_ledger (
          id text NOT NULL, kind text NOT NULL, merchant_id text NOT NULL, provider_key text, amount bigint NOT NULL,
          currency text NOT NULL, status text NOT NULL, provider_reference text, ref_key text,
          created_at timestamptz NOT NULL, key_state text, lease_expires_at timestamptz, stuck boolean NOT NULL,
          in_window boolean NOT NULL DEFAULT true)
        ON COMMIT DROP""");
    String merchant = r.merchantPrefix().isPresent() ? " AND left(%s.merchant_id, length(?)) = ?" : "";
    String provider = r.provider().isPresent() ? " AND p.provider = ?" : "";
    // A claim records the provider as its provider_id (simulator, http <provider_name> or
    // http <provider_url>); its ledger row will name it as simulator, the name, or http.
    String claimProvider = r.provider().isPresent() ? """

          AND CASE WHEN k.provider_id LIKE 'http %://%' THEN 'http'
                   WHEN k.provider_id LIKE 'http %' THEN substr(k.provider_id, 6)
                   ELSE k.provider_id END = ?""" : "";
    String sql = "INSERT INTO recon_ledger\n" + LEDGER_PAYMENTS + """

        WHERE p.created_at >= ? AND p.created_at < ?""" + provider + merchant.formatted("p") + """

        UNION ALL
        SELECT k.payment_id, 'claim', k.merchant_id, k.provider_key, k.amount, k.currency, lower(k.state), NULL, NULL,
               k.created_at, k.state, CASE WHEN k.lease_expires_at < t.as_of THEN k.lease_expires_at END,
               k.created_at <= t.landed_by
                 AND (k.state = 'PENDING' OR k.lease_expires_at < t.as_of OR k.next_inquiry_at IS NOT NULL)
        FROM idemgate.idempotency_keys k CROSS JOIN (SELECT ?::timestamptz, ?::timestamptz) t (as_of, landed_by)
        WHERE k.state IN ('PROCESSING', 'PENDING') AND k.created_at >= ? AND k.created_at < ?
          AND NOT EXISTS (SELECT 1 FROM idemgate.payments p WHERE p.id = k.payment_id)""" + claimProvider
        + merchant.formatted("k");
    try (PreparedStatement s = c.prepareStatement(sql)) {
      bindLedgerQuery(s, bindLedgerQuery(s, 1, r, from, to), r, from, to); // the payments, then the claims
      s.executeUpdate();
    }
  }

  /**
   * Step 1. A reference names one ledger payment when it is unique for the row's merchant, or,
   * for a row without a merchant, unique in the window. A row's merchant is never overruled by its
   * reference: simulator references restart with each process, so another merchant's payment may
   * carry the same one, and matching it would hide an orphan of one merchant and a missing
   * settlement of the other.
   * References are compared as written first, then, for the rows left, without case or punctuation:
   * a reference written exactly as one payment's names that payment, even when another payment's
   * reads the same once normalised (inv-1-12 and inv-11-2); compared only normalised, the two made
   * each other ambiguous and both rows orphans.
   * Here and in step 2, a payment outside the window (brought in by {@link #loadPaymentsBeyondWindow})
   * is matched as one inside: a payment in the window is preferred only because the first pass runs
   * before the payments outside it are loaded.
   */
  private static void matchByReference(Connection c) throws SQLException {
    matchByReference(c, "provider_reference", "provider_reference", 1.0);
    matchByReference(c, "ref_key", "provider_reference_normalized", 0.99);
  }

  private static void matchByReference(Connection c, String column, String method, double confidence)
      throws SQLException {
    try (PreparedStatement s = c.prepareStatement("""
        INSERT INTO recon_match (line, payment_id, method, confidence)
        SELECT line, id, ?, ?
        FROM (
          SELECT s.line, l.id, s.merchant_id IS NULL AS no_merchant, l.merchant_id = s.merchant_id AS same_merchant,
                 count(*) OVER (PARTITION BY s.line) AS candidates,
                 count(*) FILTER (WHERE l.merchant_id = s.merchant_id) OVER (PARTITION BY s.line) AS same_merchant_candidates
          FROM recon_stage s JOIN recon_ledger l ON l.%1$s = s.%1$s
          WHERE s.%1$s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.line = s.line)) c
        WHERE (no_merchant AND candidates = 1) OR (same_merchant AND same_merchant_candidates = 1)""".formatted(column))) {
      s.setString(1, method);
      s.setDouble(2, confidence);
      s.executeUpdate();
    }
  }

  /**
   * Step 1b. The rows still unmatched that carry a reference or a provider key are looked up in the
   * whole ledger (of the provider and merchants asked for), through its indexes on provider_key and
   * on provider_reference (the reference as the provider wrote it: a normalised one would need an
   * index of its own, a regular expression on every payment written). A reversal of a payment
   * charged long before the file's window, a settlement later than the lag (a long weekend) or a
   * file whose settled_at has a wrong year name a payment that is no orphan: called one, it was
   * advised to be refunded although the customer was charged once. The payments found join
   * recon_ledger with in_window false, so that steps 1 and 2 can match them. A settled row matched
   * to a payment charged more than the lag before it (a late settlement, or a second one after an
   * earlier file's) is listed in the summary's settled_outside_lag and warned about, so that it does
   * not pass unseen; a second one after a settlement an earlier run recorded is also a DUPLICATE_CHARGE.
   *
   * <p>Invariant: a payment outside the window is only ever matched by its reference or key. It is
   * no candidate of the probabilistic step, never expected (MISSING_IN_SETTLEMENT) and not counted
   * in the window. A reference names a payment outside the window only for the row's own merchant
   * when the row has one: simulator references restart at every start, so an old payment of another
   * merchant may carry the same one.
   *
   * @return how many payments were added
   */
  private int loadPaymentsBeyondWindow(Connection c, ReconciliationRequest r, Instant from, Instant to)
      throws SQLException {
    String provider = r.provider().isPresent() ? " AND p.provider = ?" : "";
    String merchant = r.merchantPrefix().isPresent() ? " AND left(p.merchant_id, length(?)) = ?" : "";
    String sql = "INSERT INTO recon_ledger SELECT found.*, false FROM (\n" + LEDGER_PAYMENTS + """

        WHERE p.id IN (
            SELECT q.id FROM recon_stage s JOIN idemgate.payments q ON q.provider_key = s.provider_key
            WHERE s.provider_key IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.line = s.line)
            UNION
            SELECT q.id FROM recon_stage s JOIN idemgate.payments q ON q.provider_reference = s.provider_reference
            WHERE s.provider_reference IS NOT NULL
              AND (s.merchant_id IS NULL OR q.merchant_id = s.merchant_id)
              AND NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.line = s.line))
          AND NOT (p.created_at >= ? AND p.created_at < ?)""" + provider + merchant + ") found";
    try (PreparedStatement s = c.prepareStatement(sql)) {
      bindLedgerQuery(s, 1, r, from, to);
      return s.executeUpdate();
    }
  }

  /**
   * A recon_ledger row of a ledger payment, and whether it is stuck; its two parameters, the as-of
   * time and the moment by which a charge claimed then has landed, then the caller's WHERE on {@code p}.
   *
   * <p>Stuck, once the charge can no longer be on its way (claimed more than {@link #chargeInFlight}
   * before the as-of time: until then recovery could not even take the claim over, and a pending
   * payment is in flight): the ledger says pending (the charge's answer was lost and its owner
   * handed it to recovery; or no record is left that anything would settle it by), or its record is
   * PROCESSING past its lease or taken over by recovery. Never judged on the
   * lease alone: each recovery pass gives the record a lease of its own for the inquiry, and with a
   * short backoff that lease is in the future nearly all the time, so a payment recovery kept
   * asking about for days was never reported. Only a lease that has run out is shown as one.
   */
  private static final String LEDGER_PAYMENTS = """
        SELECT p.id, 'payment', p.merchant_id, p.provider_key, p.amount, p.currency, p.status, p.provider_reference,
               idemgate.recon_ref_norm(p.provider_reference), p.created_at, k.state,
               CASE WHEN k.lease_expires_at < t.as_of THEN k.lease_expires_at END,
               p.created_at <= t.landed_by
                 AND (p.status = 'pending' OR coalesce(k.lease_expires_at < t.as_of OR k.next_inquiry_at IS NOT NULL, false))
        FROM idemgate.payments p CROSS JOIN (SELECT ?::timestamptz, ?::timestamptz) t (as_of, landed_by)
        LEFT JOIN (SELECT payment_id, state, lease_expires_at, next_inquiry_at FROM idemgate.idempotency_keys
                   WHERE state IN ('PROCESSING', 'PENDING')) k ON k.payment_id = p.id""";

  /**
   * Binds, from {@code i}, what every ledger query takes in this order: the as-of time, the moment
   * by which a charge claimed then has landed (as-of less {@link #chargeInFlight}), the window's ends, then the provider and the merchant prefix (twice) when asked for.
   *
   * @return the next parameter's index
   */
  private int bindLedgerQuery(PreparedStatement s, int i, ReconciliationRequest r, Instant from, Instant to)
      throws SQLException {
    s.setTimestamp(i++, Timestamp.from(r.asOf()));
    s.setTimestamp(i++, Timestamp.from(r.asOf().minus(chargeInFlight)));
    s.setTimestamp(i++, Timestamp.from(from));
    s.setTimestamp(i++, Timestamp.from(to));
    if (r.provider().isPresent()) {
      s.setString(i++, r.provider().get());
    }
    if (r.merchantPrefix().isPresent()) {
      s.setString(i++, r.merchantPrefix().get());
      s.setString(i++, r.merchantPrefix().get());
    }
    return i;
  }

  /** Step 2: the provider key is the gateway's own idempotency key at the provider, unique per charge. */
  private static void matchByProviderKey(Connection c) throws SQLException {
    execute(c, """
        INSERT INTO recon_match (line, payment_id, method, confidence)
        SELECT DISTINCT ON (s.line) s.line, l.id, 'provider_key', 1.0
        FROM recon_stage s JOIN recon_ledger l ON l.provider_key = s.provider_key
        WHERE s.provider_key IS NOT NULL AND NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.line = s.line)
        ORDER BY s.line, l.id""");
  }

  /**
   * Step 3: Fellegi–Sunter over the rows left on both sides. The ledger's side is every charge that
   * may have been made: succeeded payments, and those whose outcome the gateway does not know yet
   * (a pending payment, a claim still PROCESSING). The latter carry no provider reference, so a file
   * that gives none of our provider keys can only match them here; left out, their settlements were
   * orphans to refund while recovery could still record them as charged. Declined payments stay
   * out: a decline and its succeeded retry would share every field and split the belief in the
   * retry's settlement (a row that names its charge is matched in steps 1 and 2 before this).
   * Candidate pairs are blocked: same merchant, or for a row without a merchant same amount and
   * currency, within the settlement lag.
   * (Blocking across merchants on amount too would pair non-matches that agree exactly on amount,
   * which breaks the independence of fields that EM assumes.) Nor is a pair whose sides both carry
   * a provider key, or both a reference, that differ: the key is unique per charge and a reference
   * names one, so these are two charges (an orphan and a missing settlement) however well amount,
   * merchant and time agree; a side without the identifier leaves the pair in. Each pair gets agreement
   * levels; EM fits m, u and p on the counts of each pattern, p bounded by the matches one-to-one
   * matching allows; a pair's confidence is its odds against every competitor of its settlement row
   * and of its payment, so two equally good candidates share the belief instead of one being
   * guessed. Since the threshold is above 1/2, accepted pairs are one-to-one.
   *
   * <p>Then a row and a payment still unmatched that are each other's only candidate of the same
   * merchant, amount and currency, charged before the row settled, are matched ({@code
   * sole_exact_amount}) whatever the model says: EM fitted on a few pairs, or on a busy merchant's
   * many, can leave such a pair under the threshold, and the row was then reported as an orphan to
   * refund although nothing else could be its payment.
   */
  private JsonObject matchProbabilistically(Connection c) throws SQLException {
    execute(c, """
        CREATE TEMP TABLE recon_left_settlement ON COMMIT DROP AS
        SELECT s.* FROM recon_stage s WHERE NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.line = s.line)""");
    execute(c, """
        CREATE TEMP TABLE recon_left_ledger ON COMMIT DROP AS
        SELECT l.* FROM recon_ledger l
        WHERE l.status IN ('succeeded', 'pending', 'processing') AND l.in_window
          AND NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.payment_id = l.id)""");
    execute(c, "ANALYZE recon_left_settlement");
    execute(c, "ANALYZE recon_left_ledger");
    execute(c, "CREATE TEMP TABLE recon_candidate (line bigint NOT NULL, payment_id text NOT NULL, g_amount int NOT NULL, "
        + "g_currency int NOT NULL, g_merchant int NOT NULL, g_time int NOT NULL) ON COMMIT DROP");
    String pairs = """
        SELECT s.line, l.id,
          CASE WHEN s.amount = l.amount THEN 0 WHEN abs(s.amount - l.amount) <= ? * l.amount THEN 1
               WHEN abs(s.amount - l.amount) <= ? * l.amount THEN 2 ELSE 3 END,
          CASE WHEN s.currency = l.currency THEN 0 ELSE 1 END,
          CASE WHEN s.merchant_id IS NULL THEN 1 ELSE 0 END,
          CASE WHEN s.settled_at - l.created_at BETWEEN interval '-1 hour' AND interval '1 day' THEN 0
               WHEN s.settled_at - l.created_at > interval '1 day' THEN 1 ELSE 2 END
        FROM recon_left_settlement s JOIN recon_left_ledger l ON %s
        WHERE l.created_at BETWEEN s.settled_at - make_interval(secs => ?) - interval '1 day'
                               AND s.settled_at + interval '1 day'
          -- NULL (a side without it) passes; two different keys or references are two charges
          AND (s.provider_key = l.provider_key) IS NOT FALSE AND (s.ref_key = l.ref_key) IS NOT FALSE""";
    try (PreparedStatement s = c.prepareStatement("INSERT INTO recon_candidate "
        + pairs.formatted("l.merchant_id = s.merchant_id") + " UNION ALL "
        + pairs.formatted("s.merchant_id IS NULL AND l.amount = s.amount AND l.currency = s.currency"))) {
      for (int half = 0; half < 2; half++) {
        s.setDouble(3 * half + 1, settings.amountTolerance() / 5);
        s.setDouble(3 * half + 2, settings.amountTolerance());
        s.setLong(3 * half + 3, settings.lookbackLag().toSeconds());
      }
      s.executeUpdate();
    }
    List<FellegiSunter.Pattern> patterns = new ArrayList<>();
    long pairCount = 0;
    try (Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("SELECT g_amount, g_currency, g_merchant, g_time, count(*) FROM recon_candidate "
             + "GROUP BY 1, 2, 3, 4")) {
      while (rs.next()) {
        patterns.add(new FellegiSunter.Pattern(new int[] {rs.getInt(1), rs.getInt(2), rs.getInt(3), rs.getInt(4)}, rs.getLong(5)));
        pairCount += rs.getLong(5);
      }
    }
    long leftSettlement = count(c, "SELECT count(*) FROM recon_left_settlement");
    long leftLedger = count(c, "SELECT count(*) FROM recon_left_ledger");
    JsonObject model = new JsonObject().put("candidate_pairs", pairCount)
        .put("unmatched_settlement_rows", leftSettlement).put("unmatched_ledger_payments", leftLedger);
    // The pairs that agree exactly on amount and currency: the rule of the sole exact amount below,
    // and the evidence of the rows left unmatched, read them here instead of the pairs again.
    execute(c, """
        CREATE TEMP TABLE recon_exact ON COMMIT DROP AS
        SELECT line, payment_id, g_merchant FROM recon_candidate WHERE g_amount = 0 AND g_currency = 0""");
    // Only rows that have a candidate are in contention: the share of them with a partner is what
    // a candidate's prior is taken from (payments of merchants absent from the file do not dilute it).
    long contendingSettlement = count(c, "SELECT count(DISTINCT line) FROM recon_candidate");
    long contendingLedger = count(c, "SELECT count(DISTINCT payment_id) FROM recon_candidate");
    execute(c, "CREATE TEMP TABLE recon_review (line bigint, payment_id text, confidence double precision) ON COMMIT DROP");
    execute(c, "CREATE INDEX ON recon_review (line)");
    execute(c, "CREATE INDEX ON recon_review (payment_id)");
    if (pairCount == 0) {
      return model;
    }
    // At most one partner per row and per payment: no more than min(rows, payments) pairs are matches.
    FellegiSunter.Model fit = FellegiSunter.fit(LEVELS, patterns, PRIOR_M, PRIOR_U, PRIOR_WEIGHT,
        Math.min(contendingSettlement, contendingLedger) / (double) pairCount);
    execute(c, "CREATE TEMP TABLE recon_pattern (g_amount int, g_currency int, g_merchant int, g_time int, "
        + "ratio double precision) ON COMMIT DROP");
    try (PreparedStatement s = c.prepareStatement("INSERT INTO recon_pattern VALUES (?, ?, ?, ?, ?)")) {
      for (FellegiSunter.Pattern g : patterns) {
        for (int k = 0; k < 4; k++) {
          s.setInt(k + 1, g.levels()[k]);
        }
        s.setDouble(5, Math.min(fit.likelihoodRatio(g.levels()), 1e300));
        s.addBatch();
      }
      s.executeBatch();
    }
    // A row's candidates compete with each other and with "no partner here". With pi the share of
    // rows that have a partner (expected matches from EM / rows) and n the row's candidates, each
    // candidate's prior is pi/n and its posterior pi/n * ratio / ((1 - pi) + pi/n * sum of ratios).
    // The same is computed from the payment's side; the confidence is the lower of the two.
    double expectedMatches = fit.matchShare() * pairCount;
    double piSettlement = Math.min(MAX_PARTNER_SHARE, Math.max(0.01, expectedMatches / Math.max(1, contendingSettlement)));
    double piLedger = Math.min(MAX_PARTNER_SHARE, Math.max(0.01, expectedMatches / Math.max(1, contendingLedger)));
    try (PreparedStatement s = c.prepareStatement("""
        CREATE TEMP TABLE recon_scored ON COMMIT DROP AS
        SELECT line, payment_id,
               least(? / n_s * ratio / ((1 - ?) + ? / n_s * sum_s),
                     ? / n_l * ratio / ((1 - ?) + ? / n_l * sum_l)) AS confidence
        FROM (SELECT c.line, c.payment_id, p.ratio,
                     count(*) OVER (PARTITION BY c.line) AS n_s, sum(p.ratio) OVER (PARTITION BY c.line) AS sum_s,
                     count(*) OVER (PARTITION BY c.payment_id) AS n_l, sum(p.ratio) OVER (PARTITION BY c.payment_id) AS sum_l
              FROM recon_candidate c JOIN recon_pattern p USING (g_amount, g_currency, g_merchant, g_time)) x""")) {
      for (int i = 0; i < 3; i++) {
        s.setDouble(1 + i, piSettlement);
        s.setDouble(4 + i, piLedger);
      }
      s.execute();
    }
    try (PreparedStatement s = c.prepareStatement("""
        INSERT INTO recon_match (line, payment_id, method, confidence)
        SELECT line, payment_id, 'probabilistic', confidence FROM recon_scored WHERE confidence >= ?""")) {
      s.setDouble(1, settings.matchThreshold());
      s.executeUpdate();
    }
    // A bare date settles any time of its day: a payment charged at 22:00 settles at that day's 00:00.
    try (PreparedStatement s = c.prepareStatement("""
        INSERT INTO recon_match (line, payment_id, method, confidence)
        SELECT line, payment_id, 'sole_exact_amount', ?
        FROM (SELECT x.line, x.payment_id, count(*) OVER (PARTITION BY x.line) AS n_s,
                     count(*) OVER (PARTITION BY x.payment_id) AS n_l
              FROM recon_exact x
              JOIN recon_left_settlement s ON s.line = x.line
              JOIN recon_left_ledger l ON l.id = x.payment_id
              WHERE x.g_merchant = 0
                AND l.created_at <= s.settled_at + CASE WHEN s.whole_day THEN interval '1 day' ELSE interval '1 hour' END
                AND NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.line = x.line)
                AND NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.payment_id = x.payment_id)) sole
        WHERE n_s = 1 AND n_l = 1""")) {
      s.setDouble(1, SOLE_EXACT_AMOUNT_CONFIDENCE);
      model.put("sole_exact_amount", s.executeUpdate());
    }
    // The best candidate of each row and of each payment left unmatched, when it is worth a look.
    try (PreparedStatement s = c.prepareStatement("""
        INSERT INTO recon_review
        SELECT x.line, x.payment_id, x.confidence FROM recon_scored x
        WHERE x.confidence >= ?
          AND NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.line = x.line)
          AND NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.payment_id = x.payment_id)""")) {
      s.setDouble(1, settings.reviewThreshold());
      s.executeUpdate();
    }
    execute(c, "ANALYZE recon_review");
    JsonObject fields = new JsonObject();
    for (int k = 0; k < FIELDS.size(); k++) {
      fields.put(FIELDS.get(k), new JsonObject().put("m", new JsonArray(toList(fit.m()[k]))).put("u", new JsonArray(toList(fit.u()[k]))));
    }
    return model.put("match_share", fit.matchShare()).put("em_iterations", fit.iterations()).put("fields", fields)
        .put("partner_share_settlement", piSettlement).put("partner_share_ledger", piLedger)
        .put("match_threshold", settings.matchThreshold()).put("review_threshold", settings.reviewThreshold());
  }

  private static List<Double> toList(double[] values) {
    List<Double> list = new ArrayList<>();
    for (double v : values) {
      list.add(Math.round(v * 1e6) / 1e6);
    }
    return list;
  }

  /**
   * Takes the settlement history for this run until it commits or rolls back: from reading what
   * earlier runs recorded ({@link #loadEarlierSettlements}) to recording this run's rows
   * ({@link #recordSettlements}), one run at a time. Without it two runs at the same time (two
   * uploads, an upload beside a Job) each read the history before the other committed, and a
   * payment both files settled was a second settlement in neither. The one that waits reads the
   * history after the other's commit (each statement's snapshot is taken when it starts), so it
   * sees those rows. Everything before, the file's COPY and the matching, still runs side by side.
   *
   * <p>A wait is bounded by {@link #HISTORY_WAIT}; past it the run fails with a reason that says so,
   * rather than at the socket's deadline with a read timeout.
   */
  private static void waitForTheSettlementHistory(Connection c) throws SQLException {
    waitForTheSettlementHistory(c, HISTORY_WAIT);
  }

  /** The same, waiting at most {@code wait} (whole seconds); in a transaction. */
  static void waitForTheSettlementHistory(Connection c, Duration wait) throws SQLException {
    execute(c, "SET LOCAL lock_timeout = '" + wait.toSeconds() + "s'");
    try (PreparedStatement s = c.prepareStatement("SELECT pg_advisory_xact_lock(?, ?)")) {
      s.setInt(1, HISTORY_LOCK_KEY1);
      s.setInt(2, HISTORY_LOCK_KEY2);
      s.execute();
    } catch (SQLException e) {
      if (LOCK_NOT_AVAILABLE.equals(e.getSQLState())) {
        throw new SQLException("another reconciliation run held the settlement history for " + wait.toSeconds()
            + " s; run this file again once it has finished", e.getSQLState(), e);
      }
      throw e;
    }
    execute(c, "SET LOCAL lock_timeout = DEFAULT");
  }

  /**
   * Readies a transaction that deletes runs (after a run, by run_retention; by the management API):
   * PostgreSQL ends it if its session is left idle in it ({@link #IDLE_IN_TRANSACTION}); it holds
   * the settlement history, waiting at most {@code wait} (whole seconds) as a run does
   * ({@link #waitForTheSettlementHistory}, which fails with {@link #LOCK_NOT_AVAILABLE}); and each
   * lock its cascade needs afterwards, a row of the run held elsewhere (an operator resolving one of
   * its discrepancies, a session left idle in a transaction), is waited for as long, the statement
   * then failing with {@link #LOCK_NOT_AVAILABLE} too, not at the socket's deadline with the history held.
   */
  static void holdTheSettlementHistoryToDelete(Connection c, Duration wait) throws SQLException {
    endTheSessionIfLeftIdle(c, IDLE_IN_TRANSACTION);
    waitForTheSettlementHistory(c, wait);
    execute(c, "SET LOCAL lock_timeout = '" + wait.toSeconds() + "s'");
  }

  /**
   * The settlements that earlier runs recorded ({@link #recordSettlements}) of the payments this
   * file's rows were matched to, less the same settlements seen again: an earlier row whose
   * settlement_id this file holds (the same file reconciled again, a monthly file repeating the daily
   * ones, a settlement the file now matches to another payment) is this file's row, never a second
   * settlement. One row per payment and settlement_id, from the run that recorded it first. This
   * run's own rows are recorded after this, and a FAILED run's are rolled back with it.
   * recon_settled_before counts, for each payment with at least one earlier settled row, its earlier
   * settled rows and its earlier reversals, and which of those settled rows was recorded first (the
   * earliest run, then the earliest settled_at); recon_seen_again holds this file's rows that an
   * earlier run recorded for the same payment, with the start of the first run that did.
   */
  private static void loadEarlierSettlements(Connection c) throws SQLException {
    // The history of this file's payments is read once, then split: rows of settlements this file
    // does not hold (recon_earlier), and rows of its own seen again (recon_seen_again).
    execute(c, """
        CREATE TEMP TABLE recon_history ON COMMIT DROP AS
        SELECT h.payment_id, h.settlement_id, h.status, h.amount, h.currency, h.settled_at, h.confidence, h.run_id,
               r.settlement_file, r.started_at AS recorded_at
        FROM idemgate.reconciliation_settlements h JOIN idemgate.reconciliation_runs r ON r.id = h.run_id
        WHERE h.payment_id IN (SELECT payment_id FROM recon_match)""");
    execute(c, "ANALYZE recon_history");
    execute(c, """
        CREATE TEMP TABLE recon_earlier ON COMMIT DROP AS
        SELECT DISTINCT ON (h.payment_id, h.settlement_id) h.*
        FROM recon_history h
        WHERE NOT EXISTS (SELECT 1 FROM recon_stage s WHERE s.settlement_id = h.settlement_id)
        ORDER BY h.payment_id, h.settlement_id, h.recorded_at, h.run_id""");
    execute(c, "CREATE INDEX ON recon_earlier (payment_id)");
    execute(c, """
        CREATE TEMP TABLE recon_settled_before ON COMMIT DROP AS
        SELECT payment_id, count(*) FILTER (WHERE status = 'settled') AS settled,
               count(*) FILTER (WHERE status <> 'settled') AS reversed,
               min(recorded_at) FILTER (WHERE status = 'settled') AS first_recorded_at,
               (array_agg(settled_at ORDER BY recorded_at, settled_at) FILTER (WHERE status = 'settled'))[1] AS first_settled_at
        FROM recon_earlier GROUP BY payment_id HAVING count(*) FILTER (WHERE status = 'settled') > 0""");
    // Per payment and money (amount, currency), the earlier rows that can net this file's reversals:
    // settled and reversed ones, whether the payment's first settlement is among them, and whether
    // their extra settlements are doubtful, as insertDuplicates doubts them: one matched without
    // certainty (confidence below 1), or two on the same settled_at (maybe one settlement renumbered).
    // A reversal nets no doubtful extra settlement: it stays a STATUS_MISMATCH, the customer perhaps
    // paid back for the one charge there was.
    execute(c, """
        CREATE TEMP TABLE recon_earlier_money ON COMMIT DROP AS
        SELECT e.payment_id, e.amount, e.currency,
               count(*) FILTER (WHERE e.status = 'settled') AS settled,
               count(*) FILTER (WHERE e.status <> 'settled') AS reversed,
               bool_or(e.status = 'settled' AND e.settlement_id = f.settlement_id) AS holds_first,
               coalesce(bool_or(e.confidence < 1) FILTER (WHERE e.status = 'settled'), false)
                 OR count(DISTINCT e.settled_at) FILTER (WHERE e.status = 'settled')
                    < count(*) FILTER (WHERE e.status = 'settled') AS doubtful
        FROM recon_earlier e
        LEFT JOIN (SELECT DISTINCT ON (payment_id) payment_id, settlement_id FROM recon_earlier WHERE status = 'settled'
                   ORDER BY payment_id, recorded_at, settled_at) f USING (payment_id)
        GROUP BY e.payment_id, e.amount, e.currency""");
    execute(c, """
        CREATE TEMP TABLE recon_seen_again ON COMMIT DROP AS
        SELECT m.line, min(h.recorded_at) AS recorded_at FROM recon_match m JOIN recon_stage s USING (line)
        JOIN recon_history h ON h.payment_id = m.payment_id AND h.settlement_id = s.settlement_id
        GROUP BY m.line""");
    execute(c, "ANALYZE recon_earlier");
    execute(c, "ANALYZE recon_settled_before");
    execute(c, "ANALYZE recon_seen_again");
    execute(c, "ANALYZE recon_earlier_money");
  }

  /**
   * Records every row this run matched (settled, refunded or chargeback) with its payment, for later
   * runs to recognise it ({@link #loadEarlierSettlements}). In the run's transaction: only a
   * COMPLETED run's rows are ever seen.
   */
  private static void recordSettlements(Connection c, String runId) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("""
        INSERT INTO idemgate.reconciliation_settlements (run_id, settlement_line, payment_id, settlement_id, status,
          amount, currency, settled_at, confidence)
        SELECT ?, s.line, m.payment_id, s.settlement_id, s.status, s.amount, s.currency, s.settled_at, m.confidence
        FROM recon_match m JOIN recon_stage s USING (line)""")) {
      s.setString(1, runId);
      s.executeUpdate();
    }
  }

  /**
   * Every matched settlement row with its ledger side and role: the first settled row of a payment
   * is its primary, later settled rows are duplicates, refunds and chargebacks are reversals.
   *
   * <p>A reversal and a duplicate of the same payment, amount and currency cancel out ({@code
   * netted}): settled twice and refunded once is one charge. Reported apart, they advised refunding
   * the duplicate (the customer paid back twice) and marking the ledger refunded (it is charged
   * once). The k-th reversal, by settled_at, nets the k-th duplicate, whatever their order in time;
   * what is left over is reported. A chargeback nets like a refund: the customer has that money
   * back, and a card scheme forbids refunding a charged-back transaction. A reversal of another
   * amount (a partial refund) nets nothing, and nothing nets the primary: a refund of a payment
   * settled once is still a STATUS_MISMATCH.
   *
   * <p>Across runs, a payment's first settlement is the one recorded first (by the earliest run, then
   * the earliest settled_at; {@link #loadEarlierSettlements}), and this file's new rows come after
   * every recorded one, so the roles do not change when a file is reconciled again: the rows of a
   * file an earlier run recorded keep their order, and a file that repeats a recorded settlement and
   * adds another reports the other, whatever their dates. When the first is an earlier file's row
   * that this file does not hold, the payment has no primary here: its first settled row in this
   * file is a duplicate ({@code after_earlier_file}), netted by a reversal in this file like any other.
   *
   * <p>A reversal left over after this file's duplicates of its money nets an extra settlement that
   * earlier files recorded and no earlier reversal netted ({@code earlier_unnetted}): settled in A,
   * again in B, refunded in C is one charge, and C's refund is no STATUS_MISMATCH (its advice, to mark
   * the ledger refunded, was wrong). This file's reversals net this file's duplicates first: B's
   * duplicate stays as B reported it, for the operator who has its report. An earlier reversal
   * already netted an earlier duplicate, in its file or counted here, so a reversal after those nets
   * nothing. Earlier runs' reports are not changed.
   */
  private static void classifyMatchedRows(Connection c) throws SQLException {
    // Only rows that can be a discrepancy are classified: a payment settled more than once, a
    // reversal, or a pair whose sides disagree. Agreeing single settlements, nearly all of a file,
    // are left out of the sort.
    execute(c, """
        CREATE TEMP TABLE recon_multi ON COMMIT DROP AS
        SELECT payment_id FROM recon_match GROUP BY payment_id HAVING count(*) > 1""");
    execute(c, """
        CREATE TEMP TABLE recon_pair ON COMMIT DROP AS
        SELECT q.*,
               q.role <> 'primary'
                 AND row_number() OVER netting <= CASE WHEN q.role = 'duplicate'
                                                       THEN count(*) FILTER (WHERE q.role = 'reversal') OVER same_money
                                                       ELSE count(*) FILTER (WHERE q.role = 'duplicate') OVER same_money
                                                            + q.earlier_unnetted END
                 AS netted
        FROM (
        -- The extra settlements of this money that earlier files recorded and no earlier reversal
        -- netted: every earlier settled row but the payment's first (when it is one of them, that is,
        -- when this file holds no primary), less the earlier reversals; none when any is doubtful.
        SELECT r.*,
               CASE WHEN r.earlier_doubtful THEN 0 ELSE greatest(0, r.earlier_same_settled
                 - CASE WHEN r.earlier_holds_first AND NOT bool_or(r.role = 'primary') OVER (PARTITION BY r.payment_id)
                        THEN 1 ELSE 0 END
                 - r.earlier_same_reversed) END AS earlier_unnetted
        FROM (
        SELECT s.line, s.settlement_id, s.provider_reference, s.provider_key, s.merchant_id, s.amount, s.currency,
               s.status, s.settled_at, m.payment_id, m.method, m.confidence, l.kind, l.status AS ledger_status,
               l.amount AS ledger_amount, l.currency AS ledger_currency, l.merchant_id AS ledger_merchant,
               l.provider_reference AS ledger_reference, l.provider_key AS ledger_key, l.created_at, l.stuck,
               CASE WHEN s.status <> 'settled' THEN 'reversal'
                    WHEN row_number() OVER settled = 1 AND first_here.yes THEN 'primary'
                    ELSE 'duplicate' END AS role,
               s.status = 'settled' AND row_number() OVER settled = 1 AND NOT first_here.yes AS after_earlier_file,
               coalesce(b.settled, 0) AS earlier_times_settled, coalesce(b.reversed, 0) AS earlier_reversals,
               first_value(s.settlement_id) OVER settled AS first_settlement_id,
               first_value(s.settled_at) OVER settled AS first_settled_at,
               count(*) FILTER (WHERE s.status = 'settled') OVER (PARTITION BY m.payment_id) AS times_settled,
               coalesce(em.settled, 0) AS earlier_same_settled, coalesce(em.reversed, 0) AS earlier_same_reversed,
               coalesce(em.holds_first, false) AS earlier_holds_first, coalesce(em.doubtful, false) AS earlier_doubtful
        FROM recon_stage s JOIN recon_match m USING (line) JOIN recon_ledger l ON l.id = m.payment_id
        LEFT JOIN recon_settled_before b ON b.payment_id = m.payment_id
        LEFT JOIN recon_earlier_money em ON em.payment_id = m.payment_id AND em.amount = s.amount AND em.currency = s.currency
        LEFT JOIN recon_seen_again g ON g.line = s.line
        CROSS JOIN LATERAL (SELECT b.payment_id IS NULL OR coalesce((g.recorded_at, s.settled_at)
                                   <= (b.first_recorded_at, b.first_settled_at), false) AS yes) first_here
        WHERE s.status <> 'settled' OR l.status <> 'succeeded' OR l.kind <> 'payment' OR l.stuck
           OR s.amount <> l.amount OR s.currency <> l.currency
           OR m.payment_id IN (SELECT payment_id FROM recon_multi) OR b.payment_id IS NOT NULL
        WINDOW settled AS (PARTITION BY m.payment_id, s.status = 'settled' ORDER BY g.recorded_at NULLS LAST, s.settled_at, s.line)
        ) r) q
        WINDOW same_money AS (PARTITION BY q.payment_id, q.amount, q.currency),
               netting AS (PARTITION BY q.payment_id, q.amount, q.currency, q.role ORDER BY q.settled_at, q.line)""");
    execute(c, "CREATE INDEX ON recon_pair (payment_id)");
    execute(c, "ANALYZE recon_pair");
  }

  private static final String INSERT = """
      INSERT INTO idemgate.reconciliation_discrepancies (run_id, category, remediation, value_minor, value_currency,
        payment_id, merchant_id, settlement_id, settlement_line, provider_reference, provider_key, ledger_amount,
        ledger_currency, ledger_status, settlement_amount, settlement_currency, settlement_status, match_method,
        confidence, occurred_at, evidence)
      """;

  /** A matched row's columns after run_id, category and remediation, from recon_pair {@code p}. */
  private static final String PAIR_COLUMNS = """
      p.payment_id, p.ledger_merchant, p.settlement_id, p.line, coalesce(p.provider_reference, p.ledger_reference),
      coalesce(p.provider_key, p.ledger_key), p.ledger_amount, p.ledger_currency, p.ledger_status, p.amount, p.currency,
      p.status, p.method, p.confidence""";

  private void insertDiscrepancies(Connection c, String runId, Instant missingFrom, Instant missingCutoff)
      throws SQLException {
    insertDuplicates(c, runId);
    insertOrphans(c, runId);
    insert(c, runId, Category.STATUS_MISMATCH, """
        SELECT ?, ?, ?, p.amount, p.currency, %s, p.created_at,
               jsonb_build_object('ledger_status', p.ledger_status, 'settlement_status', p.status,
                 'ledger_created_at', p.created_at, 'settled_at', p.settled_at)
               || CASE WHEN p.earlier_times_settled > 0
                       THEN jsonb_build_object('earlier_times_settled', p.earlier_times_settled) ELSE '{}' END
        FROM recon_pair p
        WHERE p.kind = 'payment' AND NOT p.stuck AND p.ledger_status <> 'pending' AND p.role <> 'duplicate' AND NOT p.netted
          AND NOT (p.ledger_status = 'succeeded' AND p.status = 'settled')""".formatted(PAIR_COLUMNS));
    insert(c, runId, Category.AMOUNT_MISMATCH, """
        SELECT ?, ?, ?, abs(p.amount - p.ledger_amount), p.currency, %s, p.created_at,
               jsonb_build_object('difference', p.amount - p.ledger_amount, 'ledger_created_at', p.created_at,
                 'settled_at', p.settled_at)
        FROM recon_pair p
        WHERE p.kind = 'payment' AND p.role = 'primary' AND p.currency = p.ledger_currency
          AND p.amount <> p.ledger_amount""".formatted(PAIR_COLUMNS));
    insert(c, runId, Category.CURRENCY_MISMATCH, """
        SELECT ?, ?, ?, p.ledger_amount, p.ledger_currency, %s, p.created_at,
               jsonb_build_object('ledger', p.ledger_amount || ' ' || p.ledger_currency,
                 'settlement', p.amount || ' ' || p.currency, 'settled_at', p.settled_at)
        FROM recon_pair p
        WHERE p.kind = 'payment' AND p.role = 'primary' AND p.currency <> p.ledger_currency""".formatted(PAIR_COLUMNS));
    try (PreparedStatement s = c.prepareStatement(INSERT + """
        SELECT ?, ?, ?, l.amount, l.currency, l.id, l.merchant_id, NULL, NULL, l.provider_reference, l.provider_key,
               l.amount, l.currency, l.status, NULL, NULL, NULL, NULL, NULL, l.created_at,
               jsonb_strip_nulls(jsonb_build_object('expected_by', l.created_at + make_interval(secs => ?),
                 'candidate_settlement_line', rv.line, 'candidate_confidence', round(rv.confidence::numeric, 4)))
        FROM recon_ledger l
        LEFT JOIN LATERAL (SELECT line, confidence FROM recon_review v WHERE v.payment_id = l.id
                           ORDER BY confidence DESC LIMIT 1) rv ON true
        WHERE l.kind = 'payment' AND l.status = 'succeeded' AND l.in_window AND l.created_at >= ? AND l.created_at <= ?
          AND NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.payment_id = l.id)""")) {
      categoryParams(s, runId, Category.MISSING_IN_SETTLEMENT);
      s.setLong(4, settings.settlementLag().toSeconds());
      s.setTimestamp(5, Timestamp.from(missingFrom));
      s.setTimestamp(6, Timestamp.from(missingCutoff));
      s.executeUpdate();
    }
    insert(c, runId, Category.STUCK_IN_LEDGER, """
        SELECT ?, ?, ?, l.amount, l.currency, l.id, l.merchant_id, p.settlement_id, p.line, l.provider_reference,
               l.provider_key, l.amount, l.currency, l.status, p.amount, p.currency, p.status, p.method, p.confidence,
               l.created_at,
               jsonb_strip_nulls(jsonb_build_object('key_state', l.key_state, 'lease_expired_at', l.lease_expires_at,
                 'provider_settled', p.line IS NOT NULL, 'settled_at', p.settled_at))
        FROM recon_ledger l
        LEFT JOIN LATERAL (SELECT * FROM recon_pair x WHERE x.payment_id = l.id AND x.role <> 'reversal'
                           ORDER BY x.settled_at LIMIT 1) p ON true
        WHERE l.stuck""");
  }

  /**
   * A payment's settled rows after its first, and the first itself when an earlier run recorded a
   * settlement of the payment under another settlement_id ({@code after_earlier_file}), less what a
   * reversal in the file nets. The evidence names the first settlement: this file's, or the earlier
   * file's with its run. Such a duplicate after an earlier file is advised to be refunded only when
   * the evidence is certain: both matches by exact reference or provider key (confidence 1), the
   * rows unlike (an earlier row of the same amount, currency and settled_at under another id may be
   * the same settlement renumbered, as a monthly file can renumber the daily files' rows), and no
   * refund or chargeback of the payment in an earlier file (it may have given this money back, or
   * the payment been charged again after it). Otherwise it is for a person to check with the
   * provider ({@link Category.Remediation#REVIEW_DUPLICATE}), with the reason.
   */
  private static void insertDuplicates(Connection c, String runId) throws SQLException {
    try (PreparedStatement s = c.prepareStatement(INSERT + """
        SELECT ?, ?, CASE WHEN e.doubt IS NULL THEN ? ELSE ? END, p.amount, p.currency, %s, p.settled_at,
               jsonb_build_object('first_settlement_id', coalesce(e.settlement_id, p.first_settlement_id),
                 'first_settled_at', coalesce(e.settled_at, p.first_settled_at),
                 'duplicate_settled_at', p.settled_at, 'ledger_created_at', p.created_at,
                 'times_settled', p.times_settled)
               || CASE WHEN e.settlement_id IS NULL THEN '{}' ELSE jsonb_strip_nulls(jsonb_build_object(
                    'earlier_run_id', e.run_id, 'earlier_settlement_file', e.settlement_file,
                    'earlier_settlement', jsonb_build_object('settlement_id', e.settlement_id, 'amount', e.amount,
                      'currency', e.currency, 'settled_at', e.settled_at),
                    'earlier_times_settled', p.earlier_times_settled, 'earlier_reversals', p.earlier_reversals,
                    'review_reason', e.doubt)) END
               || coalesce((SELECT jsonb_build_object('reversals_netted', count(*) FILTER (WHERE n.role = 'reversal'),
                                     'netted_settlement_ids', jsonb_agg(n.settlement_id ORDER BY n.settled_at, n.line))
                            FROM recon_pair n WHERE n.payment_id = p.payment_id AND n.netted HAVING count(*) > 0), '{}')
        FROM recon_pair p
        LEFT JOIN LATERAL (
          SELECT x.*, CASE
                   WHEN x.same THEN 'an earlier file settled this payment with the same amount, currency and '
                     || 'settled_at under another settlement_id: it may be the same settlement renumbered'
                   WHEN x.reversals > 0 THEN 'an earlier file refunded or charged back this payment: that may have '
                     || 'given this money back, or the payment been charged again after it'
                   WHEN p.confidence < 1 OR x.certain = 0 THEN 'this row or the earlier one was matched to the '
                     || 'payment without an exact reference or provider key: the match is not certain' END AS doubt
          FROM (SELECT h.*, h.amount = p.amount AND h.currency = p.currency AND h.settled_at = p.settled_at AS same,
                       p.earlier_reversals AS reversals,
                       count(*) FILTER (WHERE h.confidence = 1) OVER () AS certain
                FROM recon_earlier h WHERE h.payment_id = p.payment_id AND h.status = 'settled') x
          ORDER BY x.same DESC, x.recorded_at, x.settled_at, x.settlement_id LIMIT 1) e ON p.after_earlier_file
        WHERE p.role = 'duplicate' AND NOT p.netted""".formatted(PAIR_COLUMNS))) {
      categoryParams(s, runId, Category.DUPLICATE_CHARGE);
      s.setString(4, Category.Remediation.REVIEW_DUPLICATE.name());
      s.executeUpdate();
    }
  }

  /**
   * The settlement rows left unmatched, each with evidence that says what the ledger holds for it.
   * A settled row is advised to be refunded only when nothing in the ledger could be its payment:
   * one that a ledger payment could be (a candidate named for review, payments of its merchant with
   * its amount and currency in the lag, or with its reference) is for a person to check
   * ({@link Category.Remediation#REVIEW_CANDIDATE}); refunding a charge the ledger does hold would
   * pay the customer back for a payment they made once. A refund or chargeback that matches no
   * payment gave money back already: refunding it too would pay the customer twice, so it gets its
   * own action whatever the candidates.
   */
  private static void insertOrphans(Connection c, String runId) throws SQLException {
    // What the ledger holds for each orphan, found with joins (an orphan's own look-ups would scan
    // the ledger once per row): payments that carry its reference or key, of its merchant or of
    // others, and payments of its merchant with its amount and currency within the lag.
    execute(c, """
        CREATE TEMP TABLE recon_orphan ON COMMIT DROP AS
        SELECT s.line FROM recon_stage s WHERE NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.line = s.line)""");
    execute(c, """
        CREATE TEMP TABLE recon_orphan_named ON COMMIT DROP AS
        SELECT line, count(*) FILTER (WHERE own) AS own, count(*) FILTER (WHERE NOT own) AS others,
               (array_agg(id ORDER BY id) FILTER (WHERE own))[1:5] AS own_ids
        FROM (SELECT o.line, l.id, s.merchant_id IS NULL OR l.merchant_id = s.merchant_id AS own
              FROM recon_orphan o JOIN recon_stage s USING (line) JOIN recon_ledger l ON l.ref_key = s.ref_key
              UNION
              SELECT o.line, l.id, true
              FROM recon_orphan o JOIN recon_stage s USING (line) JOIN recon_ledger l ON l.provider_key = s.provider_key) n
        GROUP BY line""");
    // rivals: the rows left unmatched that have the same payment as an exact candidate (all of them
    // orphans), so that the evidence says why a lone candidate was not matched.
    execute(c, """
        CREATE TEMP TABLE recon_orphan_alike ON COMMIT DROP AS
        SELECT line, count(*) AS alike, (array_agg(payment_id ORDER BY payment_id))[1:5] AS alike_ids,
               max(rivals) AS rivals, bool_and(settled_first) AS settled_first
        FROM (SELECT x.line, x.payment_id, count(*) OVER (PARTITION BY x.payment_id) AS rivals,
                     l.created_at > s.settled_at + CASE WHEN s.whole_day THEN interval '1 day' ELSE interval '1 hour' END
                       AS settled_first
              FROM recon_orphan o JOIN recon_exact x USING (line) JOIN recon_stage s USING (line)
              JOIN recon_ledger l ON l.id = x.payment_id
              WHERE NOT EXISTS (SELECT 1 FROM recon_match m WHERE m.payment_id = x.payment_id)) a
        GROUP BY line""");
    try (PreparedStatement orphans = c.prepareStatement(INSERT + """
        SELECT ?, ?, CASE WHEN s.status <> 'settled' THEN ?
                          WHEN coalesce(n.own, 0) > 1 OR a.alike > 0 OR rv.payment_id IS NOT NULL THEN ?
                          ELSE ? END,
               s.amount, s.currency, NULL, s.merchant_id, s.settlement_id, s.line, s.provider_reference,
               s.provider_key, NULL, NULL, NULL, s.amount, s.currency, s.status, NULL, NULL, s.settled_at,
               jsonb_strip_nulls(jsonb_build_object(
                 'reason', CASE
                   WHEN coalesce(n.own, 0) > 1 THEN n.own || ' ledger payments' || of_merchant || ' have this '
                     || 'reference or provider key: which one this row is, if any, is not certain (candidate_payment_ids)'
                   WHEN a.alike > 1 THEN a.alike || ' ledger payments' || of_merchant || ' have this amount and '
                     || 'currency and were charged within the settlement lag of it (give or take a day), and nothing '
                     || 'tells them apart: which one this row is, if any, is not certain (candidate_payment_ids)'
                   WHEN a.alike = 1 THEN 'a ledger payment' || of_merchant || ' has this amount and currency and was '
                     || 'charged within the settlement lag of it (give or take a day), but '
                     || CASE WHEN a.rivals > 1 THEN a.rivals - 1 || ' other row(s) of the file could be it as well'
                             WHEN a.settled_first THEN 'it was charged after this row settled'
                             ELSE 'this row names no merchant' END
                     || ': not matched with certainty (candidate_payment_ids)'
                   WHEN rv.payment_id IS NOT NULL THEN 'a ledger payment agrees with this row closely, but not enough to '
                     || 'be matched with certainty (candidate_payment_id, at candidate_confidence)'
                   WHEN n.others > 0 THEN 'no ledger payment of this merchant has this reference; a payment of another '
                     || 'merchant has it (references repeat across merchants)'
                   WHEN s.ref_key IS NOT NULL OR s.provider_key IS NOT NULL THEN 'no ledger payment' || of_merchant
                     || ' has this reference or provider key (in the ledger window in any spelling, outside it as '
                     || 'written), and none agrees with it closely enough in amount, currency and time to be named as a '
                     || 'candidate'
                   ELSE 'no reference or key, and no ledger payment agrees with it closely enough in amount, currency, '
                     || 'merchant and time to be named as a candidate' END,
                 'candidate_payment_ids', CASE WHEN coalesce(n.own, 0) > 1 THEN to_jsonb(n.own_ids)
                                               WHEN a.alike > 0 THEN to_jsonb(a.alike_ids) END,
                 'candidate_payment_id', rv.payment_id, 'candidate_confidence', round(rv.confidence::numeric, 4)))
        FROM recon_orphan o JOIN recon_stage s USING (line)
        CROSS JOIN LATERAL (SELECT CASE WHEN s.merchant_id IS NULL THEN '' ELSE ' of this merchant' END AS of_merchant) w
        LEFT JOIN recon_orphan_named n USING (line)
        LEFT JOIN recon_orphan_alike a USING (line)
        LEFT JOIN LATERAL (SELECT payment_id, confidence FROM recon_review v WHERE v.line = s.line
                           ORDER BY confidence DESC LIMIT 1) rv ON true""")) {
      orphans.setString(1, runId);
      orphans.setString(2, Category.ORPHAN_AT_PROVIDER.name());
      orphans.setString(3, Category.Remediation.FIND_REVERSED_PAYMENT.name());
      orphans.setString(4, Category.Remediation.REVIEW_CANDIDATE.name());
      orphans.setString(5, Category.ORPHAN_AT_PROVIDER.remediation().name());
      orphans.executeUpdate();
    }
  }

  private static void insert(Connection c, String runId, Category category, String select) throws SQLException {
    try (PreparedStatement s = c.prepareStatement(INSERT + select)) {
      categoryParams(s, runId, category);
      s.executeUpdate();
    }
  }

  private static void categoryParams(PreparedStatement s, String runId, Category category) throws SQLException {
    s.setString(1, runId);
    s.setString(2, category.name());
    s.setString(3, category.remediation().name());
  }

  /**
   * Score = value in major units (minor units scaled by the currency's exponent, no exchange
   * rates) x the category's severity x an age factor from 1 (today) to 2 (30 days or older),
   * since older items run into chargeback and dispute deadlines. Priority is the rank by score.
   *
   * <p>Hazard: the run's discrepancies were inserted in this transaction, so the table's statistics
   * never count them, and PostgreSQL can plan the join of the ranking with the table as a nested loop
   * that ranks the whole run again for each of its rows: quadratic, 95 s for 10,000 discrepancies
   * (0.5 s as a hash join). The statement is planned without nested loops.
   */
  private static void prioritise(Connection c, String runId, Instant asOf) throws SQLException {
    execute(c, "SET LOCAL enable_nestloop = off");
    execute(c, "CREATE TEMP TABLE recon_exponent (currency text PRIMARY KEY, digits int NOT NULL) ON COMMIT DROP");
    try (PreparedStatement s = c.prepareStatement("INSERT INTO recon_exponent VALUES (?, ?)")) {
      for (Currency currency : Currency.getAvailableCurrencies()) {
        s.setString(1, currency.getCurrencyCode());
        s.setInt(2, Math.max(0, currency.getDefaultFractionDigits()));
        s.addBatch();
      }
      s.executeBatch();
    }
    String severities = Stream.of(Category.values())
        .map(k -> String.format(Locale.ROOT, "('%s', %.3f)", k.name(), k.severity()))
        .collect(Collectors.joining(", "));
    try (PreparedStatement s = c.prepareStatement("""
        WITH scored AS (
          SELECT d.id, d.value_minor / power(10, coalesce(e.digits, 2)) * sev.severity
                   * (1 + least(greatest(extract(epoch FROM (?::timestamptz - d.occurred_at)) / 86400, 0), 30) / 30) AS score,
                 sev.severity
          FROM idemgate.reconciliation_discrepancies d
          JOIN (VALUES %s) sev (category, severity) ON sev.category = d.category
          LEFT JOIN recon_exponent e ON e.currency = d.value_currency
          WHERE d.run_id = ?),
        ranked AS (
          SELECT id, score, row_number() OVER (ORDER BY score DESC, severity DESC, id) AS priority FROM scored)
        UPDATE idemgate.reconciliation_discrepancies d SET score = r.score, priority = r.priority
        FROM ranked r WHERE d.run_id = ? AND d.id = r.id""".formatted(severities))) {
      s.setTimestamp(1, Timestamp.from(asOf));
      s.setString(2, runId);
      s.setString(3, runId);
      s.executeUpdate();
    }
    execute(c, "RESET enable_nestloop");
  }

  /**
   * A discrepancy an operator resolved in an earlier run is resolved in this one too when this run
   * finds it again with the same facts: same category, payment, settlement row, provider key, and
   * the same amounts, currencies and statuses on both sides. A changed fact makes it a new
   * discrepancy, open. The note names the run where an operator resolved it (a note carried over
   * before is kept as it is, so it never grows); the latest resolution wins.
   *
   * @return how many of this run's discrepancies were resolved that way
   */
  private static long carryOverResolutions(Connection c, String runId) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("""
        WITH earlier AS (
          SELECT DISTINCT ON (d.id) d.id, p.run_id, p.resolved_at, p.resolution_note
          FROM idemgate.reconciliation_discrepancies d
          JOIN idemgate.reconciliation_discrepancies p
            ON p.status = 'resolved' AND p.run_id <> d.run_id AND p.category = d.category
           AND coalesce(p.payment_id, '') = coalesce(d.payment_id, '')
           AND coalesce(p.settlement_id, '') = coalesce(d.settlement_id, '')
           AND p.provider_key IS NOT DISTINCT FROM d.provider_key
           AND p.ledger_amount IS NOT DISTINCT FROM d.ledger_amount
           AND p.ledger_currency IS NOT DISTINCT FROM d.ledger_currency
           AND p.ledger_status IS NOT DISTINCT FROM d.ledger_status
           AND p.settlement_amount IS NOT DISTINCT FROM d.settlement_amount
           AND p.settlement_currency IS NOT DISTINCT FROM d.settlement_currency
           AND p.settlement_status IS NOT DISTINCT FROM d.settlement_status
          WHERE d.run_id = ?
          ORDER BY d.id, p.resolved_at DESC)
        UPDATE idemgate.reconciliation_discrepancies d
        SET status = 'resolved', resolved_at = e.resolved_at,
            resolution_note = CASE WHEN e.resolution_note LIKE 'resolved in run %' THEN e.resolution_note
                                   ELSE 'resolved in run ' || e.run_id || coalesce(': ' || e.resolution_note, '') END
        FROM earlier e WHERE d.run_id = ? AND d.id = e.id""")) {
      s.setString(1, runId);
      s.setString(2, runId);
      return s.executeUpdate();
    }
  }

  private static void saveProbableMatches(Connection c, String runId) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("""
        INSERT INTO idemgate.reconciliation_matches (run_id, settlement_line, settlement_id, payment_id, method, confidence)
        SELECT ?, m.line, s.settlement_id, m.payment_id, m.method, m.confidence
        FROM recon_match m JOIN recon_stage s USING (line) WHERE m.confidence < 1""")) {
      s.setString(1, runId);
      s.executeUpdate();
    }
  }

  private static JsonObject summarise(Connection c, String runId, Ingest ingest, JsonObject model, Instant asOf)
      throws SQLException {
    JsonObject byCategory = new JsonObject();
    JsonObject valueByCategory = new JsonObject();
    for (Category category : Category.values()) {
      byCategory.put(category.name(), 0L);
      valueByCategory.put(category.name(), new JsonObject());
    }
    long total = 0;
    try (PreparedStatement s = c.prepareStatement("""
        SELECT category, value_currency, count(*), sum(value_minor) FROM idemgate.reconciliation_discrepancies
        WHERE run_id = ? GROUP BY 1, 2 ORDER BY 1, 2""")) {
      s.setString(1, runId);
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          String category = rs.getString(1);
          byCategory.put(category, byCategory.getLong(category) + rs.getLong(3));
          valueByCategory.getJsonObject(category).put(rs.getString(2), rs.getLong(4));
          total += rs.getLong(3);
        }
      }
    }
    // Each payment and settlement row pair's money once, as the report's open value_at_stake counts
    // it (ReconciliationStore.currentFigures) but over every discrepancy found, resolved or not: the
    // list of runs takes the resolved ones out of it.
    JsonObject valueAtStake = new JsonObject();
    try (PreparedStatement s = c.prepareStatement("""
        SELECT value_currency, sum(value_minor)
        FROM (SELECT value_currency, value_minor,
                     row_number() OVER (PARTITION BY payment_id, settlement_line
                                        ORDER BY category = 'AMOUNT_MISMATCH', priority, id) AS nth
              FROM idemgate.reconciliation_discrepancies WHERE run_id = ?) d
        WHERE nth = 1 GROUP BY 1 ORDER BY 1""")) {
      s.setString(1, runId);
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          valueAtStake.put(rs.getString(1), rs.getLong(2));
        }
      }
    }
    JsonObject matches = new JsonObject();
    long matched = 0;
    try (Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("SELECT method, count(*), min(confidence) FROM recon_match GROUP BY 1 ORDER BY 1")) {
      while (rs.next()) {
        matches.put(rs.getString(1), new JsonObject().put("rows", rs.getLong(2)).put("min_confidence", rs.getDouble(3)));
        matched += rs.getLong(2);
      }
    }
    return new JsonObject()
        .put("total", total)
        .put("by_category", byCategory)
        .put("value_by_category", valueByCategory)
        .put("value_at_stake", valueAtStake)
        .put("rows", new JsonObject().put("read", ingest.read).put("valid", ingest.staged + ingest.filteredOut)
            .put("malformed", ingest.malformedCount).put("repeated", ingest.repeated)
            .put("outside_merchant_filter", ingest.filteredOut)
            .put("reconciled", ingest.staged).put("matched", matched)
            .put("netted", count(c, "SELECT count(*) FROM recon_pair WHERE netted"))
            // Each extra settlement netted here took one reversal here; the reversals netted beyond
            // them netted an earlier file's (classifyMatchedRows).
            .put("netted_earlier", count(c, "SELECT count(*) FILTER (WHERE role = 'reversal') "
                + "- count(*) FILTER (WHERE role = 'duplicate') FROM recon_pair WHERE netted")))
        .put("ledger", new JsonObject()
            .put("payments_in_window", count(c, "SELECT count(*) FROM recon_ledger WHERE kind = 'payment' AND in_window"))
            .put("payments_outside_window", count(c, "SELECT count(*) FROM recon_ledger WHERE NOT in_window"))
            .put("claims_in_flight", count(c, "SELECT count(*) FROM recon_ledger WHERE kind = 'claim' AND NOT stuck"))
            .put("payments_in_flight", count(c, "SELECT count(*) FROM recon_ledger WHERE kind = 'payment' "
                + "AND status = 'pending' AND NOT stuck AND in_window")))
        .put("matches", matches)
        .put("needs_review", count(c, "SELECT count(DISTINCT line) FROM recon_review"))
        .put("matching_model", model)
        .put("settlement_span", ingest.first == null ? null
            : new JsonObject().put("first", ingest.first.toString()).put("last", ingest.last.toString()))
        .put("as_of", asOf.toString());
  }

  /**
   * The settled rows matched to a payment charged more than the settlement lag before them, or
   * settled before the charge (by more than an hour, or a day for a bare date): a settlement late
   * past the lag (a long weekend), a second settlement of a payment an earlier file settled (a
   * DUPLICATE_CHARGE too when an earlier run recorded the first), or a wrong date in the file. Each is matched (its reference, key or sole exact amount names the
   * payment); they are counted and the first listed, for a person to check.
   */
  private static JsonObject settledOutsideLag(Connection c, Duration lag) throws SQLException {
    execute(c, "CREATE TEMP TABLE recon_outside_lag (line bigint, settlement_id text, payment_id text, "
        + "charged_at timestamptz, settled_at timestamptz, late boolean) ON COMMIT DROP");
    try (PreparedStatement s = c.prepareStatement("""
        INSERT INTO recon_outside_lag
        SELECT s.line, s.settlement_id, m.payment_id, l.created_at, s.settled_at,
               s.settled_at > l.created_at + make_interval(secs => ?)
        FROM recon_match m JOIN recon_stage s USING (line) JOIN recon_ledger l ON l.id = m.payment_id
        WHERE s.status = 'settled'
          AND (s.settled_at > l.created_at + make_interval(secs => ?)
               OR s.settled_at + CASE WHEN s.whole_day THEN interval '1 day' ELSE interval '1 hour' END < l.created_at)""")) {
      s.setLong(1, lag.toSeconds());
      s.setLong(2, lag.toSeconds());
      s.executeUpdate();
    }
    JsonArray first = new JsonArray();
    try (PreparedStatement s = c.prepareStatement(
        "SELECT settlement_id, payment_id, charged_at, settled_at FROM recon_outside_lag ORDER BY line LIMIT ?")) {
      s.setInt(1, OUTSIDE_LAG_LISTED);
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          first.add(new JsonObject().put("settlement_id", rs.getString(1)).put("payment_id", rs.getString(2))
              .put("charged_at", instant(rs, 3).toString()).put("settled_at", instant(rs, 4).toString()));
        }
      }
    }
    return new JsonObject()
        .put("rows", count(c, "SELECT count(*) FROM recon_outside_lag"))
        .put("late", count(c, "SELECT count(*) FROM recon_outside_lag WHERE late"))
        .put("before_charge", count(c, "SELECT count(*) FROM recon_outside_lag WHERE NOT late"))
        .put("settled_rows_matched", count(c, "SELECT count(*) FROM recon_match m JOIN recon_stage s USING (line) "
            + "WHERE s.status = 'settled'"))
        .put("first", first);
  }

  /**
   * What the operator should know before acting on the report: settlements matched outside the lag
   * (most of a file so: a wrong date, or a lag too short), and a window with no ledger payment while
   * rows without a reference or key had only it to be matched in.
   */
  private static List<String> warnings(Connection c, JsonObject summary, JsonObject outsideLag, Duration lag, Instant from,
      Instant to) throws SQLException {
    List<String> warnings = new ArrayList<>();
    long outside = outsideLag.getLong("rows");
    long settled = outsideLag.getLong("settled_rows_matched");
    if (outside > 0) {
      String what = outside + " of the " + settled + " matched settled rows were settled more than the settlement lag ("
          + lagText(lag) + ") after their payment's charge, or before it (" + outsideLag.getLong("late") + " late, "
          + outsideLag.getLong("before_charge") + " before the charge)";
      warnings.add(2 * outside > settled
          ? what + ": most of the file, so check its settled_at (a wrong year or month?) and the settlement lag; "
              + "each row is matched to the payment its reference, key or amount names (summary.settled_outside_lag)"
          : what + ": a late settlement, or a second one of a payment an earlier file settled that no earlier "
              + "run recorded (a second one an earlier run recorded is a DUPLICATE_CHARGE); check them "
              + "(summary.settled_outside_lag)");
    }
    long inWindow = summary.getJsonObject("ledger").getLong("payments_in_window");
    long bare = count(c, "SELECT count(*) FROM recon_orphan o JOIN recon_stage s USING (line) "
        + "WHERE s.ref_key IS NULL AND s.provider_key IS NULL");
    if (inWindow == 0 && bare > 0) {
      warnings.add("no ledger payment (of the provider and merchants reconciled) was charged in the ledger window, "
          + from + " to " + to + ": the file's " + bare + " row(s) without a reference or provider key had no "
          + "payment to be matched with; check the file's dates, --from and --to");
    }
    return warnings;
  }

  /** A lag as it is configured: 2d, 36h, 90m or 0s. */
  static String lagText(Duration lag) {
    long seconds = lag.toSeconds();
    if (seconds > 0 && seconds % 86_400 == 0) {
      return seconds / 86_400 + "d";
    }
    if (seconds > 0 && seconds % 3_600 == 0) {
      return seconds / 3_600 + "h";
    }
    return seconds > 0 && seconds % 60 == 0 ? seconds / 60 + "m" : seconds + "s";
  }

  private static long count(Connection c, String sql) throws SQLException {
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private static void execute(Connection c, String sql) throws SQLException {
    try (Statement s = c.createStatement()) {
      s.execute(sql);
    }
  }
}
