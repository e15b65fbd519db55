package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.Main;
import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.storage.Migrations;
import dev.idemgate.support.TestGateway;
import io.vertx.core.json.JsonObject;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import picocli.CommandLine;

/**
 * Ledger rows for one test, in the shared database: every merchant id starts with a prefix unique
 * to the test run, and reconciliation is run with {@code --merchant-prefix}, so rows of other tests
 * in {@code idemgate.payments} never enter the comparison.
 */
final class LedgerFixture implements AutoCloseable {
  final String prefix = "rt" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextInt()) + "_";
  final Connection connection;

  LedgerFixture() throws SQLException {
    Migrations.migrate(TestGateway.pgUrl());
    connection = Jdbc.connect(TestGateway.pgUrl());
  }

  String merchant(String name) {
    return prefix + name;
  }

  /** Inserts a ledger payment; returns its id. */
  String payment(String merchant, long amount, String currency, String status, String reference, Instant createdAt)
      throws SQLException {
    String id = "pay_" + prefix + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
    try (PreparedStatement s = connection.prepareStatement("""
        INSERT INTO idemgate.payments (id, merchant_id, provider_key, amount, currency, status, provider,
          provider_reference, decline_code, created_at)
        VALUES (?, ?, ?, ?, ?, ?, 'simulator', ?, ?, ?)""")) {
      s.setString(1, id);
      s.setString(2, merchant(merchant));
      s.setString(3, providerKey(id));
      s.setLong(4, amount);
      s.setString(5, currency);
      s.setString(6, status);
      s.setString(7, reference);
      s.setString(8, status.equals("declined") ? "card_declined" : null);
      s.setTimestamp(9, Timestamp.from(createdAt));
      s.executeUpdate();
    }
    return id;
  }

  static String providerKey(String paymentId) {
    return ProviderKeys.of("fixture", paymentId);
  }

  /**
   * An idempotency record in PROCESSING or PENDING whose lease ran out at {@code leaseExpiresAt},
   * claimed for {@link #nobodysProvider()}. Not for {@code simulator}: the recovery of any gateway
   * running on this database with the simulator would take such a claim, hear "never seen" from its
   * own simulator and free the key (or, past its provider_key_retention, turn the claim into a
   * pending payment), and the record a test planted would be gone or changed under it.
   */
  void key(String merchant, String paymentId, String state, long amount, Instant createdAt, Instant leaseExpiresAt)
      throws SQLException {
    key(merchant, paymentId, state, amount, createdAt, leaseExpiresAt, nobodysProvider());
  }

  /** A provider id ({@code http NAME}) of this test's own, which no gateway's recovery takes records of. */
  String nobodysProvider() {
    return "http " + prefix + "acquirer";
  }

  /** The same, claimed for {@code providerId} (simulator, http NAME or http URL). */
  void key(String merchant, String paymentId, String state, long amount, Instant createdAt, Instant leaseExpiresAt,
      String providerId) throws SQLException {
    try (PreparedStatement s = connection.prepareStatement("""
        INSERT INTO idemgate.idempotency_keys (merchant_id, idempotency_key, fingerprint, state, epoch, generation,
          payment_id, provider_key, lease_expires_at, amount, currency, created_at, provider_id)
        VALUES (?, ?, 'fixture', ?, 1, 1, ?, ?, ?, ?, 'EUR', ?, ?)""")) {
      s.setString(1, merchant(merchant));
      s.setString(2, "key-" + paymentId);
      s.setString(3, state);
      s.setString(4, paymentId);
      s.setString(5, providerKey(paymentId));
      s.setTimestamp(6, Timestamp.from(leaseExpiresAt));
      s.setLong(7, amount);
      s.setTimestamp(8, Timestamp.from(createdAt));
      s.setString(9, providerId);
      s.executeUpdate();
    }
  }

  /**
   * Leaves a record as recovery's passes leave one it keeps asking about: each take bumps the epoch
   * and the inquiry count and gives the record a lease of its own for the inquiry
   * ({@code RecoveryStore#TAKE_DUE}), then the next inquiry is put on the backoff schedule. So its
   * lease is in the future again every few seconds, whatever its age.
   */
  void askedAboutByRecovery(String paymentId, int passes, Instant now) throws SQLException {
    try (PreparedStatement s = connection.prepareStatement("""
        UPDATE idemgate.idempotency_keys
        SET epoch = epoch + ?, inquiry_attempts = inquiry_attempts + ?, lease_expires_at = ?, next_inquiry_at = ?,
            updated_at = ?
        WHERE payment_id = ? AND starts_with(merchant_id, ?)""")) {
      s.setInt(1, passes);
      s.setInt(2, passes);
      s.setTimestamp(3, Timestamp.from(now.plusSeconds(6)));
      s.setTimestamp(4, Timestamp.from(now.plusSeconds(5)));
      s.setTimestamp(5, Timestamp.from(now));
      s.setString(6, paymentId);
      s.setString(7, prefix);
      if (s.executeUpdate() != 1) {
        throw new IllegalStateException("no record of " + paymentId);
      }
    }
  }

  /** The outcome of one command line run in this JVM. */
  record Cli(int status, String out, String err) {}

  /** Runs {@code idemgate ARGS} as {@link Main#main} would, without exiting the JVM. */
  static Cli cli(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cli = new CommandLine(new Main());
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    cli.setParameterExceptionHandler((e, a) -> {
      e.getCommandLine().getErr().println("idemgate: " + e.getMessage() + " (see --help)");
      return 2;
    });
    int status = cli.execute(args);
    return new Cli(status, out.toString(), err.toString());
  }

  static JsonObject readJson(Path file) throws java.io.IOException {
    return new JsonObject(Files.readString(file));
  }

  /**
   * Takes the settlement history's advisory lock ({@link Reconciler#HISTORY_LOCK_KEY1}) in {@code c}'s
   * transaction (autocommit off), as a run does: runs that reach their look-up wait until it ends.
   */
  static void holdTheSettlementHistory(Connection c) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("SELECT pg_advisory_xact_lock(?, ?)")) {
      s.setInt(1, Reconciler.HISTORY_LOCK_KEY1);
      s.setInt(2, Reconciler.HISTORY_LOCK_KEY2);
      s.execute();
    }
  }

  /**
   * Sessions holding ({@code granted}) or waiting for the settlement history's advisory lock; a
   * two-key lock shows in pg_locks as classid (first key), objid (second) and objsubid 2.
   */
  static long sessionsOnTheHistoryLock(Connection c, boolean granted) throws SQLException {
    return sessionsOnTheHistoryLock(c, granted, null);
  }

  /** The same, of the session {@code pid} alone (every session's when null). */
  static long sessionsOnTheHistoryLock(Connection c, boolean granted, Long pid) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("""
        SELECT count(*) FROM pg_locks
        WHERE locktype = 'advisory' AND granted = ? AND objsubid = 2 AND classid = ?::oid AND objid = ?::oid
          AND (?::int IS NULL OR pid = ?::int)""")) {
      s.setBoolean(1, granted);
      s.setLong(2, Reconciler.HISTORY_LOCK_KEY1);
      s.setLong(3, Reconciler.HISTORY_LOCK_KEY2);
      s.setObject(4, pid == null ? null : pid.intValue(), java.sql.Types.INTEGER);
      s.setObject(5, pid == null ? null : pid.intValue(), java.sql.Types.INTEGER);
      try (ResultSet rs = s.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  /** A reconcile run's JSON report, and what the command said on standard error. */
  record Reconciled(JsonObject report, String err) {}

  /**
   * Writes {@code csv} to {@code dir/name} and reconciles it with the CLI for the merchants under
   * {@code merchantPrefix}, with settlement lag {@code lag}; the command must succeed.
   */
  static Reconciled reconcile(Path dir, String name, String csv, String merchantPrefix, String lag) throws Exception {
    Path file = dir.resolve(name);
    Files.writeString(file, csv);
    Path report = dir.resolve(name + ".json");
    Cli cli = cli("reconcile", "--settlement", file.toString(), "--merchant-prefix", merchantPrefix,
        "--settlement-lag", lag, "--out", report.toString());
    assertThat(cli.status()).as(cli.err()).isZero();
    return new Reconciled(readJson(report), cli.err());
  }

  /** A report's discrepancies that name a settlement row, by its settlement_id. */
  static Map<String, JsonObject> bySettlement(JsonObject report) {
    Map<String, JsonObject> out = new HashMap<>();
    report.getJsonArray("discrepancies").forEach(o -> {
      JsonObject d = (JsonObject) o;
      if (d.getString("settlement_id") != null) {
        out.put(d.getString("settlement_id"), d);
      }
    });
    return out;
  }

  /**
   * Deletes what this test created, and nothing else: the ledger payments, idempotency records and
   * released payments of its merchants, and the reconciliation runs made for its merchants (with
   * their discrepancies and matches, which cascade). Every one of them carries this test's random
   * prefix; {@code starts_with}, not {@code LIKE}, whose {@code _} would match any character.
   */
  @Override
  public void close() throws SQLException {
    try {
      // A test that turned autocommit off (a batch of inserts) has its work committed first, then
      // each delete commits on its own.
      connection.setAutoCommit(true);
      for (String delete : List.of(
          "DELETE FROM idemgate.reconciliation_runs WHERE starts_with(merchant_prefix, ?)",
          "DELETE FROM idemgate.payments WHERE starts_with(merchant_id, ?)",
          "DELETE FROM idemgate.released_payments WHERE starts_with(merchant_id, ?)",
          "DELETE FROM idemgate.idempotency_keys WHERE starts_with(merchant_id, ?)")) {
        try (PreparedStatement s = connection.prepareStatement(delete)) {
          s.setString(1, prefix);
          s.executeUpdate();
        }
      }
    } finally {
      connection.close();
    }
  }
}
