package dev.idemgate.reconciliation;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.config.ConfigException;
import dev.idemgate.config.ConfigLoader;
import dev.idemgate.storage.Migrations;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code idemgate reconcile}: reconciles a settlement file against the ledger and writes the
 * report. Exit status 0 when the run completed (whatever it found), 2 for a bad argument (a provider
 * nothing knows, an --out that cannot be written) or a file that cannot be reconciled, 1 when
 * PostgreSQL cannot be used.
 */
@Command(name = "reconcile", mixinStandardHelpOptions = true, sortOptions = false,
    description = {"Reconcile a provider's settlement file against the ledger (DESIGN §6).",
        "The run and its discrepancies are stored in PostgreSQL; the report goes to --out or standard output."})
public final class ReconcileCommand implements Callable<Integer> {
  static final int EXIT_OK = 0;
  static final int EXIT_FAILED = 1;
  static final int EXIT_USAGE = 2;
  private static final int MALFORMED_SHOWN = 20;

  @Spec
  CommandSpec spec;

  /** The process's environment; a test gives its own. */
  Map<String, String> environment = System.getenv();

  @Option(names = "--settlement", required = true, paramLabel = "FILE",
      description = "Settlement CSV: header row with settlement_id, provider_reference, provider_key, merchant_id, "
          + "amount, currency, status, settled_at (any order; extra columns ignored).")
  Path settlement;

  @Option(names = "--provider", paramLabel = "P",
      description = "Provider: reads the file with column_map.P of the reconciliation settings and limits the ledger to "
          + "payments.provider = P. Refused (exit 2) when P has no column_map entry and no payment in the ledger.")
  String provider;

  @Option(names = "--from", paramLabel = "T", description = "Start of the ledger window (ISO-8601 instant or date, UTC). "
      + "Default: the file's first settled_at minus the settlement lag. Payments charged from T on are expected "
      + "in the file (MISSING_IN_SETTLEMENT); by default, those charged from its first settled_at.")
  String from;

  @Option(names = "--to", paramLabel = "T", description = "End of the ledger window, exclusive (a date means the end of that day). "
      + "Default: the file's last settled_at plus the settlement lag.")
  String to;

  @Option(names = "--format", paramLabel = "json|csv|html", defaultValue = "json", description = "Report format (default: ${DEFAULT-VALUE}).")
  String format;

  @Option(names = "--out", paramLabel = "FILE", description = "Write the report here (default: standard output).")
  Path out;

  @Option(names = "--merchant-prefix", paramLabel = "PREFIX",
      description = "Only merchants whose id starts with PREFIX, in the ledger and in the file.")
  String merchantPrefix;

  @Option(names = "--settlement-lag", paramLabel = "DURATION", description = "Override settlement_lag for this run (e.g. 4d, 36h); a shorter one only makes payments expected sooner, the ledger is searched back the setting's lag.")
  String settlementLag;

  @Option(names = "--config", paramLabel = "FILE", description = "Gateway configuration (for pg_url, and lease and provider_timeout: how long a charge may be in flight).")
  Path config;

  @Option(names = "--reconciliation-config", paramLabel = "FILE", description = "Reconciliation settings (default: "
      + "$IDEMGATE_RECONCILIATION_CONFIG, else conf/reconciliation.yaml if present).")
  Path reconciliationConfig;

  @Override
  public Integer call() {
    PrintWriter err = spec.commandLine().getErr();
    ReportFormat reportFormat = ReportFormat.parse(format);
    if (reportFormat == null) {
      return usage(err, "--format must be json, csv or html, got '" + format + "'");
    }
    String pgUrl;
    Duration chargeInFlight;
    ReconciliationSettings settings;
    Optional<Instant> windowFrom;
    Optional<Instant> windowTo;
    try {
      Map<String, String> env = environment;
      // Warnings on standard error: the log's JSON line on standard output would go into the report.
      java.util.function.Consumer<String> warn = warnings(err);
      // pg_url, lease and provider_timeout alone, the settings used: a Job given the ConfigMap was
      // refused over the gateway container's own settings (an acquirer URL in its Secret, TLS files
      // it mounts), as migrate was.
      ConfigLoader.ForReconciliation gateway = ConfigLoader.loadForReconciliation(
          ConfigLoader.namedOrDefaultFile(config, env), env, warn);
      pgUrl = gateway.pgUrl();
      chargeInFlight = gateway.chargeInFlight();
      settings = ReconciliationSettings.load(
          reconciliationConfig == null ? ReconciliationSettings.defaultFile(env) : Optional.of(reconciliationConfig), env, warn);
      if (settlementLag != null) {
        settings = settings.withSettlementLag(ReconciliationSettings.settlementLag("--settlement-lag", settlementLag));
      }
      windowFrom = Optional.ofNullable(from).map(t -> instant("--from", t, false));
      windowTo = Optional.ofNullable(to).map(t -> instant("--to", t, true));
    } catch (ConfigException e) {
      return usage(err, e.getMessage());
    }
    if (windowFrom.isPresent() && windowTo.isPresent() && !windowFrom.get().isBefore(windowTo.get())) {
      return usage(err, "--from must be before --to");
    }
    if ("".equals(merchantPrefix)) {
      return usage(err, EMPTY_PREFIX_REFUSAL + "; nothing was run");
    }
    Optional<String> unwritable = out == null ? Optional.empty() : OutputFile.problem(out);
    if (unwritable.isPresent()) {
      return usage(err, "--out " + out + ": " + unwritable.get() + "; nothing was run");
    }
    SettlementReader reader;
    try {
      Map<String, String> columnMap = settings.columnMap(Optional.ofNullable(provider));
      if (Files.isRegularFile(settlement)) {
        // Not a pipe (--settlement /dev/stdin), which this first reading would use up.
        try (java.io.InputStream in = Files.newInputStream(settlement)) {
          SettlementReader.checkRecords(in, settlement.toString(), columnMap, CredentialScanner.NONE);
        } catch (IOException e) {
          return usage(err, settlement + ": cannot be read (" + e.getMessage() + ")");
        }
      }
      reader = SettlementReader.open(settlement, columnMap);
    } catch (SettlementFileException e) {
      return usage(err, e.getMessage() + "; nothing was run");
    }
    ReconciliationRequest request = new ReconciliationRequest(settlement.getFileName().toString(),
        ReconciliationRequest.Source.CLI, Optional.ofNullable(provider), windowFrom, windowTo,
        Optional.ofNullable(merchantPrefix), Instant.now());
    try {
      Migrations.migrate(pgUrl);
    } catch (Migrations.StoreUnreachable e) {
      reader.close();
      err.println("idemgate: " + e.getMessage());
      return EXIT_FAILED;
    }
    try (Connection c = Jdbc.connect(pgUrl)) {
      Optional<String> unknown = provider == null ? Optional.empty()
          : KnownProviders.refusal(c, settings, "--provider", provider, Set.of());
      if (unknown.isPresent()) {
        reader.close();
        return usage(err, unknown.get());
      }
      Reconciler reconciler = new Reconciler(settings, chargeInFlight);
      String runId = reconciler.createRun(c, request);
      Reconciler.Outcome outcome;
      try {
        outcome = reconciler.run(c, runId, reader, request);
      } catch (SettlementFileException e) {
        return usage(err, e.getMessage());
      }
      ReconciliationRun run = ReconciliationStore.run(c, runId).orElseThrow();
      try (Writer writer = out == null
          ? new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8)) {
            @Override
            public void close() throws IOException {
              flush(); // standard output stays open for the JVM
            }
          }
          : Files.newBufferedWriter(out, StandardCharsets.UTF_8)) {
        ReportWriter.write(reportFormat, c, run, writer);
      }
      for (MalformedRow m : outcome.malformed().subList(0, Math.min(MALFORMED_SHOWN, outcome.malformed().size()))) {
        err.println("idemgate: " + settlement + " line " + m.line() + ": " + m.reason() + " (skipped)");
      }
      for (Object warning : outcome.summary().getJsonArray("warnings", new JsonArray())) {
        err.println("idemgate: warning: " + warning);
      }
      String oldRuns = outcome.oldRuns() == null ? null : outcome.oldRuns().describe();
      if (oldRuns != null) {
        err.println("idemgate: " + (outcome.oldRuns().failure() != null ? "warning: " : "") + oldRuns);
      }
      err.println("idemgate: " + describe(runId, outcome.summary()) + (out == null ? "" : "; report in " + out));
      err.flush();
      return EXIT_OK;
    } catch (SQLException e) {
      err.println("idemgate: reconciliation failed in PostgreSQL: " + firstLine(e.getMessage()));
      return EXIT_FAILED;
    } catch (IOException e) {
      err.println("idemgate: cannot write the report" + (out == null ? "" : " to " + out) + ": " + OutputFile.reason(e));
      return EXIT_FAILED;
    } catch (Exception e) {
      err.println("idemgate: reconciliation failed: " + firstLine(String.valueOf(e.getMessage())));
      return EXIT_FAILED;
    }
  }

  /** One line for the operator: what was read and found. */
  static String describe(String runId, JsonObject summary) {
    JsonObject rows = summary.getJsonObject("rows");
    JsonObject byCategory = summary.getJsonObject("by_category");
    List<String> found = new ArrayList<>();
    for (Category category : Category.values()) {
      long n = byCategory.getLong(category.name(), 0L);
      if (n > 0) {
        found.add(n + " " + category.name());
      }
    }
    return "run " + runId + ": " + rows.getLong("reconciled") + " settlement rows, " + rows.getLong("matched") + " matched, "
        + rows.getLong("malformed") + " malformed; " + summary.getLong("total") + " discrepancies"
        + (found.isEmpty() ? "" : " (" + String.join(", ", found) + ")")
        + (summary.getLong("resolved_earlier", 0L) > 0 ? ", of which " + summary.getLong("resolved_earlier")
            + " resolved in an earlier run" : "");
  }

  /** An ISO-8601 instant, or a date (UTC): its start, or for an end bound the start of the next day. */
  static Instant instant(String option, String text, boolean end) {
    try {
      if (text.length() == 10) {
        LocalDate day = LocalDate.parse(text);
        return (end ? day.plusDays(1) : day).atStartOfDay(ZoneOffset.UTC).toInstant();
      }
      Instant parsed = SettlementReader.parseInstant(text.trim());
      if (parsed != null) {
        return parsed;
      }
    } catch (DateTimeException e) {
      // reported below
    }
    throw new ConfigException(option + ": '" + text + "' is not an ISO-8601 date or date-time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)");
  }

  /** Where the reconciliation commands say a configuration warning: one line on standard error. */
  static java.util.function.Consumer<String> warnings(PrintWriter err) {
    return warning -> err.println("idemgate: warning: " + warning);
  }

  /**
   * {@code --merchant-prefix ''} (a variable that came out empty, say) would select every merchant: a
   * scope nobody asked for. Refused, as the API refuses {@code ?merchant_prefix=}.
   */
  static final String EMPTY_PREFIX_REFUSAL = "--merchant-prefix must not be empty (leave it out for every merchant)";

  private static int usage(PrintWriter err, String message) {
    err.println("idemgate: " + message);
    err.flush();
    return EXIT_USAGE;
  }

  private static String firstLine(String s) {
    return s == null ? "" : s.lines().findFirst().orElse("");
  }
}
