package dev.idemgate.ship;

import dev.idemgate.observability.GatewayMetrics;
import dev.idemgate.observability.GatewayMetrics.RequestOutcome;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The meters the dashboard and alerts may name (Prometheus names, as Micrometer exports them), and a
 * small PromQL reader that finds the series names an expression selects. It is not a PromQL parser:
 * it drops strings, label matchers, ranges and grouping clauses, then takes every identifier that is
 * not a function call or keyword as a series name. That is enough for the expressions we write.
 */
final class PromQlMeters {
  /** Counters and gauges: named exactly. */
  static final Set<String> EXACT = Set.of(
      "idemgate_requests_total",
      "idemgate_inflight_requests",
      "idemgate_recovery_actions_total",
      "idemgate_store_errors_total",
      "jvm_memory_used_bytes",
      "idemgate_http_connections",
      "idemgate_api_keys",
      "idemgate_api_keys_file_refused_total",
      "idemgate_provider_circuit_open",
      "idemgate_rate_limited_total",
      "idemgate_rate_limit_exchange_failures_total",
      "idemgate_retention_lag_seconds",
      "idemgate_dependency_up",
      "idemgate_log_lines_dropped_total");

  /** Timers, histograms and distribution summaries: the base name plus one of Micrometer's series suffixes. */
  static final Set<String> HISTOGRAMS = Set.of(
      "idemgate_request_latency_seconds",
      "idemgate_gate_latency_seconds",
      "idemgate_store_latency_seconds",
      "idemgate_provider_latency_seconds",
      "idemgate_store_group_payments",
      "jvm_gc_pause_seconds");

  static final List<String> HISTOGRAM_SUFFIXES = List.of("_bucket", "_sum", "_count", "_max");

  /** Vert.x client pool meters (vertx_pool_in_use, vertx_pool_queue_pending, ...). */
  static final String VERTX_POOL_PREFIX = "vertx_pool_";

  /** The {@code outcome} tag's values, as GatewayMetrics writes them. */
  static final Set<String> OUTCOMES = Arrays.stream(RequestOutcome.values())
      .map(outcome -> outcome.name().toLowerCase(Locale.ROOT)).collect(Collectors.toUnmodifiableSet());

  /** The bucket boundaries of {@code idemgate_request_latency_seconds}, in seconds, as Prometheus reads them. */
  static final List<Double> REQUEST_LATENCY_BOUNDARIES = GatewayMetrics.REQUEST_LATENCY_BOUNDARIES.stream()
      .map(boundary -> boundary.toNanos() / 1e9).toList();

  private static final String REQUEST_LATENCY_BUCKET = "idemgate_request_latency_seconds_bucket";
  private static final Pattern LE_MATCHER = Pattern.compile("\\ble\\s*(?:=|!=)\\s*\"([^\"]*)\"");
  private static final Pattern COMPARED_NUMBER =
      Pattern.compile("(?:>=|<=|==|!=|>|<)\\s*(?:bool\\s+)?([0-9]*\\.?[0-9]+(?:[eE][-+]?[0-9]+)?)");

  private static final Set<String> KEYWORDS = Set.of("and", "or", "unless", "bool", "offset", "by", "without", "on",
      "ignoring", "group_left", "group_right", "inf", "nan", "atan2");
  private static final Pattern STRINGS = Pattern.compile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`");
  private static final Pattern MATCHERS = Pattern.compile("\\{[^}]*}");
  private static final Pattern RANGES = Pattern.compile("\\[[^]]*]");
  private static final Pattern GROUPING = Pattern.compile("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)");
  private static final Pattern VARIABLES = Pattern.compile("\\$\\{?\\w+}?");
  private static final Pattern IDENTIFIER = Pattern.compile("(?<![\\w.:])[a-zA-Z_:][\\w:]*");
  private static final Pattern OUTCOME_MATCHER = Pattern.compile("outcome\\s*(=~|=|!=|!~)\\s*\"([^\"]*)\"");

  private PromQlMeters() {}

  static boolean known(String series) {
    if (EXACT.contains(series) || series.startsWith(VERTX_POOL_PREFIX)) {
      return true;
    }
    for (String base : HISTOGRAMS) {
      for (String suffix : HISTOGRAM_SUFFIXES) {
        if (series.equals(base + suffix)) {
          return true;
        }
      }
    }
    return false;
  }

  /** The series names an expression selects. */
  static Set<String> seriesIn(String expr) {
    String stripped = VARIABLES.matcher(expr).replaceAll(" ");
    stripped = STRINGS.matcher(stripped).replaceAll("\"\"");
    stripped = MATCHERS.matcher(stripped).replaceAll(" ");
    stripped = RANGES.matcher(stripped).replaceAll(" ");
    stripped = GROUPING.matcher(stripped).replaceAll(" ");
    Set<String> names = new LinkedHashSet<>();
    Matcher m = IDENTIFIER.matcher(stripped);
    while (m.find()) {
      String name = m.group();
      boolean call = stripped.substring(m.end()).stripLeading().startsWith("(");
      if (!call && !KEYWORDS.contains(name.toLowerCase(java.util.Locale.ROOT))) {
        names.add(name);
      }
    }
    return names;
  }

  /** Series an expression names that are not in the list above. */
  static List<String> unknownSeries(String expr, Set<String> alsoAllowed) {
    List<String> unknown = new ArrayList<>();
    for (String name : seriesIn(expr)) {
      if (!known(name) && !alsoAllowed.contains(name)) {
        unknown.add(name);
      }
    }
    return unknown;
  }

  /**
   * In an expression over {@code idemgate_request_latency_seconds_bucket}, the latency thresholds
   * that are not bucket boundaries: the values of {@code le} matchers, and, where the expression
   * takes a {@code histogram_quantile}, the numbers that quantile is compared with. A threshold
   * between two boundaries selects no bucket ({@code le}), or compares with an interpolation.
   */
  static List<String> offBoundaryLatencyThresholds(String expr) {
    List<String> off = new ArrayList<>();
    if (!expr.contains(REQUEST_LATENCY_BUCKET)) {
      return off;
    }
    Matcher le = LE_MATCHER.matcher(expr);
    while (le.find()) {
      if (!le.group(1).equals("+Inf") && !isRequestLatencyBoundary(le.group(1))) {
        off.add(le.group(1));
      }
    }
    if (expr.contains("histogram_quantile")) {
      Matcher compared = COMPARED_NUMBER.matcher(MATCHERS.matcher(expr).replaceAll(" "));
      while (compared.find()) {
        if (!isRequestLatencyBoundary(compared.group(1))) {
          off.add(compared.group(1));
        }
      }
    }
    return off;
  }

  private static boolean isRequestLatencyBoundary(String seconds) {
    try {
      double value = Double.parseDouble(seconds);
      return REQUEST_LATENCY_BOUNDARIES.stream().anyMatch(boundary -> Math.abs(boundary - value) < 1e-12);
    } catch (NumberFormatException notANumber) {
      return false;
    }
  }

  /** Values matched by outcome="..." or outcome=~"a|b" that are not request outcomes. */
  static List<String> unknownOutcomes(String expr) {
    List<String> unknown = new ArrayList<>();
    Matcher m = OUTCOME_MATCHER.matcher(expr);
    while (m.find()) {
      for (String value : m.group(2).split("\\|")) {
        if (!OUTCOMES.contains(value)) {
          unknown.add(value);
        }
      }
    }
    return unknown;
  }
}
