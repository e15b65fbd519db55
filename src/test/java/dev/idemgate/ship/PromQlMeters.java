package dev.idemgate.ship;

import dev.idemgate.observability.GatewayMetrics;
import dev.idemgate.observability.GatewayMetrics.RequestOutcome;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
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
      "idemgate_log_lines_dropped_total",
      "idemgate_provider_reference_reused_total");

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

  /**
   * The bucket boundaries of each latency histogram with fixed buckets, in seconds, as Prometheus
   * reads them, by the name of its {@code _bucket} series.
   */
  static final Map<String, List<Double>> LATENCY_BOUNDARIES = Map.of(
      "idemgate_request_latency_seconds_bucket", seconds(GatewayMetrics.REQUEST_LATENCY_BOUNDARIES),
      "idemgate_gate_latency_seconds_bucket", seconds(GatewayMetrics.GATE_LATENCY_BOUNDARIES),
      "idemgate_store_latency_seconds_bucket", seconds(GatewayMetrics.STORE_LATENCY_BOUNDARIES),
      "idemgate_provider_latency_seconds_bucket", seconds(GatewayMetrics.PROVIDER_LATENCY_BOUNDARIES));

  /** A latency histogram's bucket series, with its label matchers if it has any. */
  private static final Pattern LATENCY_BUCKETS = Pattern.compile("(idemgate_\\w+_latency_seconds_bucket)\\s*(\\{[^}]*})?");
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
   * In an expression over the bucket series of the latency histograms (request, gate, store,
   * provider), the latency thresholds that are not bucket boundaries of the histogram they apply
   * to: the values of the {@code le} matchers of each histogram's selectors, and, where the
   * expression takes a {@code histogram_quantile}, the numbers that quantile is compared with (a
   * boundary of every latency histogram the expression names). A threshold between two boundaries
   * selects no bucket ({@code le}), or compares with an interpolation.
   */
  static List<String> offBoundaryLatencyThresholds(String expr) {
    List<String> off = new ArrayList<>();
    List<List<Double>> named = new ArrayList<>();
    Matcher selector = LATENCY_BUCKETS.matcher(expr);
    while (selector.find()) {
      List<Double> boundaries = LATENCY_BOUNDARIES.get(selector.group(1));
      if (boundaries == null) {
        continue; // no such histogram: unknownSeries says so
      }
      named.add(boundaries);
      Matcher le = LE_MATCHER.matcher(selector.group(2) == null ? "" : selector.group(2));
      while (le.find()) {
        if (!le.group(1).equals("+Inf") && !isBoundary(le.group(1), boundaries)) {
          off.add(le.group(1));
        }
      }
    }
    if (!named.isEmpty() && expr.contains("histogram_quantile")) {
      Matcher compared = COMPARED_NUMBER.matcher(MATCHERS.matcher(expr).replaceAll(" "));
      while (compared.find()) {
        String threshold = compared.group(1);
        if (!named.stream().allMatch(boundaries -> isBoundary(threshold, boundaries))) {
          off.add(threshold);
        }
      }
    }
    return off;
  }

  private static boolean isBoundary(String seconds, List<Double> boundaries) {
    try {
      double value = Double.parseDouble(seconds);
      return boundaries.stream().anyMatch(boundary -> Math.abs(boundary - value) < 1e-12);
    } catch (NumberFormatException notANumber) {
      return false;
    }
  }

  private static List<Double> seconds(List<Duration> boundaries) {
    return boundaries.stream().map(boundary -> boundary.toNanos() / 1e9).toList();
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
