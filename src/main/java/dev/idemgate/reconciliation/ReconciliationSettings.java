package dev.idemgate.reconciliation;

import dev.idemgate.config.ConfigException;
import dev.idemgate.config.Durations;
import dev.idemgate.config.StrictYaml;
import dev.idemgate.config.Unreadable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The settings of reconciliation, from {@code conf/reconciliation.yaml}: the built-in copy in the
 * jar, then an optional file, then {@code IDEMGATE_RECONCILIATION_<KEY>} environment variables for
 * the scalar keys. Kept apart from {@code GatewayConfig} because the gateway's request path needs
 * none of it and the column maps are nested.
 *
 * @param settlementLag how long before a payment is expected in a file (this run's, when one gives its own)
 * @param columnMaps provider name to (canonical column to the provider's header name)
 * @param lookbackLag how far before a row's settled_at its payment is looked for: the configured lag,
 *     or a run's own when that is longer. A run's shorter lag (0s, to see missing settlements sooner)
 *     never narrows it: rows of payments charged a day before they settled would be orphans to refund.
 * @param runRetention how long after it started a run is kept, with its discrepancies and the
 *     settlements it recorded; zero keeps every run ({@link Reconciler#deleteRunsOlderThan})
 */
public record ReconciliationSettings(
    Duration settlementLag,
    double matchThreshold,
    double reviewThreshold,
    double amountTolerance,
    long maxUploadBytes,
    Map<String, Map<String, String>> columnMaps,
    Duration lookbackLag,
    Duration runRetention) {

  private static final String ENV_PREFIX = "IDEMGATE_RECONCILIATION_";
  private static final Logger log = LoggerFactory.getLogger(ReconciliationSettings.class);
  /** Longer than any provider settles in; far longer, and PostgreSQL's timestamps go out of range. */
  public static final Duration MAX_SETTLEMENT_LAG = Duration.ofDays(90);
  /**
   * The shortest run_retention other than zero: a run must outlive the next day's file, whose
   * second settlements of the same payments it is there to find.
   */
  static final Duration MIN_RUN_RETENTION = Duration.ofDays(1);
  /** A hundred years: far past any record-keeping rule, and well inside PostgreSQL's intervals. */
  static final Duration MAX_RUN_RETENTION = Duration.ofDays(36_500);

  /**
   * A settlement lag given as {@code name} ({@code settlement_lag}, {@code --settlement-lag}): a
   * duration from 0 to {@link #MAX_SETTLEMENT_LAG}, else one line naming it.
   */
  public static Duration settlementLag(String name, String text) {
    Duration lag = Durations.parse(name, text);
    if (lag.compareTo(MAX_SETTLEMENT_LAG) > 0) {
      throw new ConfigException(name + ": must be at most " + MAX_SETTLEMENT_LAG.toDays() + "d, got " + text.trim());
    }
    return lag;
  }

  /** run_retention as given: 0 (keep every run), or from {@link #MIN_RUN_RETENTION} to {@link #MAX_RUN_RETENTION}. */
  static Duration runRetention(String text) {
    Duration retention = Durations.parse("run_retention", text);
    if (!retention.isZero() && retention.compareTo(MIN_RUN_RETENTION) < 0) {
      throw new ConfigException("run_retention: 0s keeps every run; any other value must be at least 1d, got " + text.trim());
    }
    if (retention.compareTo(MAX_RUN_RETENTION) > 0) {
      throw new ConfigException("run_retention: must be at most " + MAX_RUN_RETENTION.toDays() + "d, got " + text.trim());
    }
    return retention;
  }

  public ReconciliationSettings {
    // Above 1/2 a settlement row and a payment can each have at most one accepted partner.
    if (!(reviewThreshold > 0 && reviewThreshold <= matchThreshold && matchThreshold > 0.5 && matchThreshold < 1)) {
      throw new ConfigException("reconciliation: need 0 < review_threshold <= match_threshold, 0.5 < match_threshold < 1, got "
          + reviewThreshold + " and " + matchThreshold);
    }
    columnMaps = Map.copyOf(columnMaps);
  }

  /** The settings as configured: the lookback is the lag. */
  public ReconciliationSettings(Duration settlementLag, double matchThreshold, double reviewThreshold,
      double amountTolerance, long maxUploadBytes, Map<String, Map<String, String>> columnMaps, Duration runRetention) {
    this(settlementLag, matchThreshold, reviewThreshold, amountTolerance, maxUploadBytes, columnMaps, settlementLag,
        runRetention);
  }

  /** The column mapping of a provider (canonical to provider header), empty when none is configured. */
  public Map<String, String> columnMap(Optional<String> provider) {
    return provider.map(p -> columnMaps.getOrDefault(p, Map.of())).orElse(Map.of());
  }

  /** One run's lag in place of the configured one; the lookback stays at least the configured lag. */
  public ReconciliationSettings withSettlementLag(Duration lag) {
    return new ReconciliationSettings(lag, matchThreshold, reviewThreshold, amountTolerance, maxUploadBytes, columnMaps,
        lag.compareTo(lookbackLag) > 0 ? lag : lookbackLag, runRetention);
  }

  /** The file to read when none is named: {@code IDEMGATE_RECONCILIATION_CONFIG}, else {@code conf/reconciliation.yaml} if present. */
  public static Optional<Path> defaultFile(Map<String, String> environment) {
    String named = environment.get(ENV_PREFIX + "CONFIG");
    if (named != null && !named.isBlank()) {
      return Optional.of(Path.of(named));
    }
    Path local = Path.of("conf", "reconciliation.yaml");
    return Files.isRegularFile(local) ? Optional.of(local) : Optional.empty();
  }

  /**
   * The settings {@code serve} runs with: {@link #defaultFile} and the {@code IDEMGATE_RECONCILIATION_*}
   * variables of {@code environment}. Read with the gateway's configuration, before anything starts,
   * so that a bad one is refused in one line (exit status 2) instead of after the migrations, as a
   * management port that "could not start listening".
   */
  public static ReconciliationSettings fromEnvironment(Map<String, String> environment) {
    return load(defaultFile(environment), environment);
  }

  /** Built-in defaults, then {@code file}, then the environment; a variable that sets nothing is warned about in the log. */
  public static ReconciliationSettings load(Optional<Path> file, Map<String, String> environment) {
    return load(file, environment, log::warn);
  }

  /** As {@link #load(Optional, Map)}, the warning handed to {@code warnings} (a command's standard error). */
  public static ReconciliationSettings load(Optional<Path> file, Map<String, String> environment, Consumer<String> warnings) {
    Map<String, Object> values = StrictYaml.read(builtIn(), "built-in reconciliation.yaml");
    if (file.isPresent()) {
      // Checked first, as for idemgate.yaml: a missing file's IOException says only its path again.
      String problem = Unreadable.check(file.get());
      if (problem != null) {
        throw new ConfigException("cannot read reconciliation settings " + file.get() + ": " + problem);
      }
      Map<String, Object> overrides;
      try {
        overrides = StrictYaml.read(Files.newInputStream(file.get()), file.get().toString());
      } catch (IOException e) {
        throw new ConfigException("cannot read reconciliation settings " + file.get() + ": " + Unreadable.reason(file.get(), e));
      }
      overrides.forEach((key, value) -> {
        if (!values.containsKey(key)) {
          throw new ConfigException(file.get() + ": unknown setting '" + key + "'");
        }
        values.put(key, value);
      });
    }
    for (String key : values.keySet()) {
      String env = environment.get(ENV_PREFIX + key.toUpperCase(Locale.ROOT));
      if (env != null && !key.equals("column_map")) {
        values.put(key, env);
      }
    }
    List<String> ignored = ignoredVariables(environment, values.keySet());
    if (!ignored.isEmpty()) {
      warnings.accept("environment variables that name no reconciliation setting, ignored: " + String.join(", ", ignored));
    }
    Duration lag = settlementLag("settlement_lag", String.valueOf(values.get("settlement_lag")));
    Duration retention = runRetention(String.valueOf(values.get("run_retention")));
    // A run deleted within the lag takes with it settlements that later files, still reading
    // payments of that time, need to tell a second settlement (the customer charged twice) by.
    if (!retention.isZero() && retention.compareTo(lag) < 0) {
      throw new ConfigException("run_retention: 0s keeps every run; any other value must be at least settlement_lag ("
          + values.get("settlement_lag") + "), got " + values.get("run_retention"));
    }
    return new ReconciliationSettings(
        lag,
        fraction(values, "match_threshold"),
        fraction(values, "review_threshold"),
        fraction(values, "amount_tolerance"),
        (long) (fraction(values, "max_upload_mib") * 1024 * 1024),
        columnMaps(values.get("column_map")),
        retention);
  }

  /**
   * The {@code IDEMGATE_RECONCILIATION_*} variables that set nothing: a misspelt one
   * ({@code IDEMGATE_RECONCILIATION_SETTLEMNT_LAG}) would otherwise leave the default in force
   * without a word. {@code COLUMN_MAP} among them: the nested column maps are read from the file only.
   * Names only, never values.
   */
  static List<String> ignoredVariables(Map<String, String> environment, Set<String> keys) {
    return environment.keySet().stream()
        .filter(name -> name.startsWith(ENV_PREFIX) && !name.equals(ENV_PREFIX + "CONFIG"))
        .filter(name -> {
          String key = name.substring(ENV_PREFIX.length()).toLowerCase(Locale.ROOT);
          return !keys.contains(key) || key.equals("column_map");
        })
        .sorted()
        .toList();
  }

  private static InputStream builtIn() {
    InputStream in = ReconciliationSettings.class.getResourceAsStream("/reconciliation.yaml");
    if (in == null) {
      throw new ConfigException("the built-in reconciliation.yaml is missing from the jar; rebuild with mvn package");
    }
    return in;
  }

  private static double fraction(Map<String, Object> values, String key) {
    try {
      double d = Double.parseDouble(String.valueOf(values.get(key)).trim());
      if (!(d > 0)) {
        throw new ConfigException("reconciliation " + key + ": must be positive, got " + d);
      }
      return d;
    } catch (NumberFormatException e) {
      throw new ConfigException("reconciliation " + key + ": '" + values.get(key) + "' is not a number");
    }
  }

  private static Map<String, Map<String, String>> columnMaps(Object raw) {
    Map<String, Map<String, String>> maps = new LinkedHashMap<>();
    if (raw == null || "".equals(raw)) {
      return maps;
    }
    if (!(raw instanceof Map<?, ?> providers)) {
      throw new ConfigException("reconciliation column_map: expected provider: {canonical_column: provider_column}");
    }
    providers.forEach((provider, columns) -> {
      if (!(columns instanceof Map<?, ?> map)) {
        throw new ConfigException("reconciliation column_map." + provider + ": expected canonical_column: provider_column");
      }
      Map<String, String> mapping = new LinkedHashMap<>();
      map.forEach((canonical, header) -> {
        String name = String.valueOf(canonical);
        if (!SettlementReader.COLUMNS.contains(name)) {
          throw new ConfigException("reconciliation column_map." + provider + ": unknown column '" + name
              + "' (known: " + String.join(", ", SettlementReader.COLUMNS) + ")");
        }
        mapping.put(name, String.valueOf(header).trim().toLowerCase(Locale.ROOT));
      });
      maps.put(String.valueOf(provider), Map.copyOf(mapping));
    });
    return maps;
  }
}
