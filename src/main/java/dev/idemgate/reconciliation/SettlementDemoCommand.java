package dev.idemgate.reconciliation;

import dev.idemgate.config.ConfigException;
import dev.idemgate.config.ConfigLoader;
import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.storage.Migrations;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code idemgate settlement-demo}: writes the settlement file a provider would send for the
 * ledger's charges, optionally with planted discrepancies, so that reconciliation can be tried
 * end to end. With {@code --seed-ledger N} it first adds N back-dated demo payments (and two stuck
 * claims) to the ledger, for a database that has none yet; never use that on a real ledger.
 */
@Command(name = "settlement-demo", mixinStandardHelpOptions = true, sortOptions = false,
    description = {"Write a settlement CSV for the ledger's charges, optionally with planted discrepancies.",
        "Try: settlement-demo --seed-ledger 300 --plant --out /tmp/settlement.csv, then reconcile --settlement /tmp/settlement.csv"})
public final class SettlementDemoCommand implements Callable<Integer> {
  /**
   * The most demo payments {@code --seed-ledger} adds: ten days of a busy shop. Beyond it, a typo
   * (an extra zero or three) would go on filling a development database, up to 2^31 rows.
   */
  static final int MAX_SEED_LEDGER = 1_000_000;

  /**
   * The provider id of the stuck claims {@code --seed-ledger} makes. A gateway's recovery takes the
   * claims of its own provider id ({@code simulator}, {@code http NAME} or {@code http URL}) and
   * those with none, which it labels with its own: seeded without one, they were taken by whatever
   * gateway ran on the database, asked about at the real acquirer pass after pass (a warning each
   * time) and, once pending, reported by reconciliation as that acquirer's. No gateway's id is this
   * one, so they stay claims in flight, past their lease, for reconciliation to report as stuck.
   */
  static final String DEMO_CLAIMS_PROVIDER = "settlement-demo";

  @Spec
  CommandSpec spec;

  /** The process's environment; a test gives its own. */
  Map<String, String> environment = System.getenv();

  @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where to write the settlement CSV.")
  Path out;

  @Option(names = "--plant", description = "Plant discrepancies: duplicates, missing rows, amount drift, currency swaps, "
      + "orphans, chargebacks, settled declines, references in another format, rows without references.")
  boolean plant;

  @Option(names = "--provider", paramLabel = "P", description = "Only the ledger's payments of provider P, and "
      + "write the header with column_map.P of the reconciliation settings. Refused (exit 2) when P has no "
      + "column_map entry and no payment in the ledger.")
  String provider;

  @Option(names = "--merchant-prefix", paramLabel = "PREFIX", description = "Only merchants whose id starts with PREFIX.")
  String merchantPrefix;

  @Option(names = "--seed-ledger", paramLabel = "N", defaultValue = "0",
      description = "First add N demo payments (at most 1,000,000) over the past 10 days for merchants demo_shop_1..4 "
          + "(development databases only).")
  int seedLedger;

  @Option(names = "--seed", paramLabel = "N", defaultValue = "42", description = "Random seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--config", paramLabel = "FILE", description = "Gateway configuration (for pg_url).")
  Path config;

  @Option(names = "--reconciliation-config", paramLabel = "FILE", description = "Reconciliation settings (for column_map).")
  Path reconciliationConfig;

  @Override
  public Integer call() {
    PrintWriter err = spec.commandLine().getErr();
    String pgUrl;
    ReconciliationSettings settings;
    try {
      Map<String, String> env = environment;
      // Warnings on standard error, as reconcile's: a command's messages are there, not in the JSON log.
      java.util.function.Consumer<String> warn = ReconcileCommand.warnings(err);
      // pg_url alone, the one setting used: a Job given the ConfigMap was refused over the gateway
      // container's own settings (an acquirer URL in its Secret, TLS files it mounts), as migrate was.
      pgUrl = ConfigLoader.loadPgUrl(ConfigLoader.namedOrDefaultFile(config, env), env, warn);
      settings = ReconciliationSettings.load(
          reconciliationConfig == null ? ReconciliationSettings.defaultFile(env) : Optional.of(reconciliationConfig), env, warn);
    } catch (ConfigException e) {
      err.println("idemgate: " + e.getMessage());
      return ReconcileCommand.EXIT_USAGE;
    }
    if (seedLedger < 0 || seedLedger > MAX_SEED_LEDGER) {
      err.println("idemgate: --seed-ledger must be between 0 and " + MAX_SEED_LEDGER + ", got " + seedLedger + "; nothing was written");
      return ReconcileCommand.EXIT_USAGE;
    }
    if ("".equals(merchantPrefix)) {
      err.println("idemgate: " + ReconcileCommand.EMPTY_PREFIX_REFUSAL + "; nothing was written");
      return ReconcileCommand.EXIT_USAGE;
    }
    Optional<String> unwritable = OutputFile.problem(out);
    if (unwritable.isPresent()) {
      err.println("idemgate: --out " + out + ": " + unwritable.get() + "; nothing was written");
      return ReconcileCommand.EXIT_USAGE;
    }
    try {
      Migrations.migrate(pgUrl);
    } catch (Migrations.StoreUnreachable e) {
      err.println("idemgate: " + e.getMessage());
      return ReconcileCommand.EXIT_FAILED;
    }
    Instant now = Instant.now();
    try (Connection c = Jdbc.connect(pgUrl)) {
      // Checked before seeding, which adds the simulator's payments; and before the file is opened,
      // so that a provider nothing knows leaves no empty settlement file behind to be reconciled.
      Optional<String> unknown = provider == null ? Optional.empty() : KnownProviders.refusal(c, settings, "--provider",
          provider, seedLedger > 0 ? Set.of("simulator") : Set.of());
      if (unknown.isPresent()) {
        err.println("idemgate: " + unknown.get());
        return ReconcileCommand.EXIT_USAGE;
      }
      if (seedLedger > 0) {
        seedDemoLedger(c, seedLedger, new Random(seed), now);
      }
      return write(c, settings, now, err);
    } catch (SQLException e) {
      err.println("idemgate: reading the ledger failed: " + e.getMessage().lines().findFirst().orElse(""));
      return ReconcileCommand.EXIT_FAILED;
    }
  }

  private int write(Connection c, ReconciliationSettings settings, Instant now, PrintWriter err) throws SQLException {
    Map<SettlementFileWriter.Plant, Integer> planted = new EnumMap<>(SettlementFileWriter.Plant.class);
    long[] rows = {0};
    try (Writer file = new BufferedWriter(Files.newBufferedWriter(out, StandardCharsets.UTF_8), 1 << 16)) {
      SettlementFileWriter writer = new SettlementFileWriter(file, settings.columnMap(Optional.ofNullable(provider)),
          plant ? SettlementFileWriter.Plan.demo() : SettlementFileWriter.Plan.none(), seed, now, w -> {
            if (w.line() > 0) {
              rows[0]++;
            }
            w.plants().forEach(p -> planted.merge(p, 1, Integer::sum));
          });
      long charges = forEachCharge(c, Optional.ofNullable(provider), Optional.ofNullable(merchantPrefix), writer::write);
      writer.close();
      err.println("idemgate: wrote " + rows[0] + " settlement rows for " + charges + " ledger payments to " + out
          + (planted.isEmpty() ? "" : "; planted " + planted.entrySet().stream()
              .map(e -> e.getValue() + " " + e.getKey()).collect(Collectors.joining(", "))));
      return ReconcileCommand.EXIT_OK;
    } catch (IOException e) {
      err.println("idemgate: cannot write " + out + ": " + OutputFile.reason(e));
      return ReconcileCommand.EXIT_FAILED;
    } catch (java.io.UncheckedIOException e) {
      err.println("idemgate: cannot write " + out + ": " + OutputFile.reason(e.getCause()));
      return ReconcileCommand.EXIT_FAILED;
    }
  }

  /** Streams the ledger's payments (oldest first) with a cursor, whatever their number. */
  static long forEachCharge(Connection c, Optional<String> provider, Optional<String> merchantPrefix,
      java.util.function.Consumer<SettlementFileWriter.Charge> each) throws SQLException {
    c.setAutoCommit(false);
    String sql = "SELECT id, provider_reference, provider_key, merchant_id, amount, currency, status, created_at "
        + "FROM idemgate.payments WHERE true"
        + (provider.isPresent() ? " AND provider = ?" : "")
        + (merchantPrefix.isPresent() ? " AND left(merchant_id, length(?)) = ?" : "")
        + " ORDER BY created_at, id";
    long n = 0;
    try (PreparedStatement s = c.prepareStatement(sql)) {
      s.setFetchSize(10_000);
      int i = 1;
      if (provider.isPresent()) {
        s.setString(i++, provider.get());
      }
      if (merchantPrefix.isPresent()) {
        s.setString(i++, merchantPrefix.get());
        s.setString(i, merchantPrefix.get());
      }
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          each.accept(new SettlementFileWriter.Charge(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4),
              rs.getLong(5), rs.getString(6), rs.getString(7), rs.getTimestamp(8).toInstant()));
          n++;
        }
      }
    } finally {
      c.commit();
      c.setAutoCommit(true);
    }
    return n;
  }

  /** Demo payments for four shops over the past 10 days (92% succeeded, 6% declined, 2% pending), and two stuck claims. */
  static void seedDemoLedger(Connection c, int count, Random random, Instant now) throws SQLException {
    List<String> currencies = List.of("EUR", "EUR", "EUR", "USD", "GBP", "JPY");
    c.setAutoCommit(false);
    try (PreparedStatement s = c.prepareStatement("""
        INSERT INTO idemgate.payments (id, merchant_id, provider_key, amount, currency, status, merchant_reference,
          provider, provider_reference, decline_code, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, 'simulator', ?, ?, ?)""")) {
      for (int i = 0; i < count; i++) {
        Instant created = now.minus(Duration.ofMinutes(random.nextInt(10 * 24 * 60))).truncatedTo(ChronoUnit.MILLIS);
        String merchant = "demo_shop_" + (1 + random.nextInt(4));
        String currency = currencies.get(random.nextInt(currencies.size()));
        long amount = currency.equals("JPY") ? 100 * (5 + random.nextInt(500)) : 500 + random.nextInt(25_000);
        double kind = random.nextDouble();
        String status = kind < 0.92 ? "succeeded" : kind < 0.98 ? "declined" : "pending";
        String id = PaymentJson.newPaymentId(created);
        s.setString(1, id);
        s.setString(2, merchant);
        s.setString(3, ProviderKeys.of(merchant, "demo-" + id));
        s.setLong(4, amount);
        s.setString(5, currency);
        s.setString(6, status);
        s.setString(7, "order-" + id.substring(4, 16));
        s.setString(8, status.equals("pending") ? null : "ch_demo_" + id.substring(16));
        s.setString(9, status.equals("declined") ? "card_declined" : null);
        s.setTimestamp(10, Timestamp.from(created));
        s.addBatch();
        if ((i + 1) % 10_000 == 0) {
          s.executeBatch(); // the driver keeps a batch's rows in memory until it is sent
        }
      }
      s.executeBatch();
    }
    try (PreparedStatement s = c.prepareStatement("""
        INSERT INTO idemgate.idempotency_keys (merchant_id, idempotency_key, fingerprint, state, epoch, generation,
          payment_id, provider_key, lease_expires_at, amount, currency, created_at, provider_id)
        VALUES (?, ?, 'demo', 'PROCESSING', 1, 1, ?, ?, ?, ?, 'EUR', ?, ?)""")) {
      for (int i = 0; i < 2; i++) {
        Instant created = now.minus(Duration.ofHours(30 + 20 * i)).truncatedTo(ChronoUnit.MILLIS);
        String merchant = "demo_shop_" + (1 + i);
        String key = "demo-stuck-" + Long.toHexString(random.nextLong());
        s.setString(1, merchant);
        s.setString(2, key);
        s.setString(3, PaymentJson.newPaymentId(created));
        s.setString(4, ProviderKeys.of(merchant, key));
        s.setTimestamp(5, Timestamp.from(created.plusSeconds(30)));
        s.setLong(6, 4_200 + 1_000L * i);
        s.setTimestamp(7, Timestamp.from(created));
        s.setString(8, DEMO_CLAIMS_PROVIDER);
        s.addBatch();
      }
      s.executeBatch();
    }
    c.commit();
    c.setAutoCommit(true);
  }
}
