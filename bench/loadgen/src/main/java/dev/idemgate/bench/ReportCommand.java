package dev.idemgate.bench;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The one table of a bench run, with the checks and ratios the issue asks for, as Markdown and as
 * JSON, with the same verdicts in both. A ratio whose inputs are missing (scenario skipped or
 * failed) says n/a rather than guessing; a target ratio over a row with errors is not met, since a
 * throughput of failed answers proves nothing. A run whose runner recorded failed steps (the
 * {@code failed_steps} fact) opens both reports with an INCOMPLETE banner.
 */
@Command(name = "report", mixinStandardHelpOptions = true,
    description = "Render the results of a run as one table plus ratios (Markdown and JSON).")
final class ReportCommand implements Callable<Integer> {
  @Option(names = "--results", required = true, description = "JSON Lines written by the other commands.")
  Path results;

  @Option(names = "--meta", description = "key=value facts about the run (machine, settings, gateway memory).")
  Path meta;

  @Option(names = "--markdown", description = "Where to write the Markdown report.")
  Path markdown;

  @Option(names = "--json", description = "Where to write the JSON report.")
  Path json;

  @Override
  public Integer call() throws IOException {
    List<JsonObject> lines = new ArrayList<>();
    for (String row : Files.readAllLines(results, StandardCharsets.UTF_8)) {
      if (!row.isBlank()) {
        lines.add(new JsonObject(row));
      }
    }
    TreeMap<String, String> facts = new TreeMap<>();
    if (meta != null && Files.exists(meta)) {
      Properties p = new Properties();
      try (Reader r = Files.newBufferedReader(meta, StandardCharsets.UTF_8)) {
        p.load(r);
      }
      p.forEach((k, v) -> facts.put(k.toString(), v.toString()));
      // The runner may record each failed step as it fails: every failed_steps line counts, not
      // only the last one (which is all a Properties keeps).
      List<String> failed = Files.readAllLines(meta, StandardCharsets.UTF_8).stream()
          .filter(l -> l.startsWith("failed_steps=")).map(l -> l.substring("failed_steps=".length()).trim())
          .filter(v -> !v.isEmpty()).toList();
      if (!failed.isEmpty()) {
        facts.put("failed_steps", String.join(", ", failed));
      }
    }
    List<Ratio> ratios = ratios(lines, facts);
    List<Check> checks = checks(lines);
    stealCheck(facts).ifPresent(checks::add);
    String md = markdown(lines, checks, ratios, facts);
    System.out.println(md);
    if (markdown != null) {
      Files.writeString(markdown, md, StandardCharsets.UTF_8);
    }
    if (json != null) {
      Files.writeString(json, json(lines, checks, ratios, facts).encodePrettily() + "\n", StandardCharsets.UTF_8);
    }
    return 0;
  }

  /** The steps the runner recorded as failed ({@code failed_steps}), or empty for a complete run. */
  static String failedSteps(TreeMap<String, String> facts) {
    return facts.getOrDefault("failed_steps", "").trim();
  }

  static JsonObject json(List<JsonObject> lines, List<Check> checks, List<Ratio> ratios, TreeMap<String, String> facts) {
    String failed = failedSteps(facts);
    JsonObject report = new JsonObject().put("complete", failed.isEmpty());
    if (!failed.isEmpty()) {
      report.put("incomplete", "these steps failed: " + failed);
    }
    JsonArray checkJson = new JsonArray();
    checks.forEach(c -> checkJson.add(c.toJson()));
    JsonArray ratioJson = new JsonArray();
    ratios.forEach(r -> ratioJson.add(r.toJson()));
    return report.put("run", new JsonObject(new TreeMap<String, Object>(facts)))
        .put("results", new JsonArray(new ArrayList<Object>(lines))).put("checks", checkJson).put("ratios", ratioJson);
  }

  /** A verdict over the whole run, not a ratio: met, NOT met, or unknown, with what it rests on. */
  record Check(String name, String verdict, String detail) {
    JsonObject toJson() {
      return new JsonObject().put("name", name).put("verdict", verdict).put("detail", detail);
    }
  }

  static List<Check> checks(List<JsonObject> lines) {
    List<Check> out = new ArrayList<>();
    out.add(zeroErrors(lines));
    find(lines, l -> is(l, "storm", "loadgen-storm")).ifPresent(storm -> out.add(stormCheck(storm)));
    List<String> behind = lines.stream().filter(ReportCommand::generatorFellBehind).map(ReportCommand::label).toList();
    if (lines.stream().anyMatch(l -> "loadgen-open".equals(l.getString("tool")))) {
      out.add(new Check("the open-loop generator kept its rate in every row", behind.isEmpty() ? "met" : "NOT met",
          behind.isEmpty() ? "send lag p99 at most " + OpenLoopCommand.FELL_BEHIND_LAG_P99_MS + " ms"
              : "fell behind, latencies overstated: " + String.join(", ", behind)));
    }
    return out;
  }

  /** The "all with zero errors": every row, whatever its tool. A row that does not say is not zero. */
  static Check zeroErrors(List<JsonObject> lines) {
    List<String> errored = new ArrayList<>();
    List<String> unread = new ArrayList<>();
    for (JsonObject l : lines) {
      Long errors = errorsOf(l);
      if (errors == null) {
        unread.add(label(l));
      } else if (errors > 0) {
        errored.add(label(l) + ": " + errors);
      }
    }
    String name = "zero errors in every row";
    if (!errored.isEmpty()) {
      return new Check(name, "NOT met", errored.size() + " of " + lines.size() + " rows had errors: " + String.join(", ", errored)
          + (unread.isEmpty() ? "" : "; errors not read for " + String.join(", ", unread)));
    }
    if (!unread.isEmpty()) {
      return new Check(name, "unknown", "errors not read for " + String.join(", ", unread));
    }
    return new Check(name, lines.isEmpty() ? "unknown" : "met", lines.size() + " rows, none with errors");
  }

  /** Steal at or above which a run is named as slowed by the hypervisor ({@link #stealCheck}). */
  static final double STEAL_NOTED_PERCENT = 2.0;
  private static final Pattern STEAL = Pattern.compile("^CPU steal ([0-9.]+)%");

  /**
   * The runs the hypervisor slowed: those whose {@code during_<run>} fact says it took
   * {@link #STEAL_NOTED_PERCENT} or more of the CPU, the most first. Steal can slow a row by more
   * than its share: a virtual CPU taken away while it holds what the other waits for (PostgreSQL's WAL
   * flush, an event loop) leaves that one idle too, and a closed loop stalls for the whole absence.
   * Empty when no run has a steal figure.
   */
  static Optional<Check> stealCheck(TreeMap<String, String> facts) {
    Map<String, Double> steal = new TreeMap<>();
    facts.forEach((key, value) -> {
      Matcher m = key.startsWith("during_") ? STEAL.matcher(value) : null;
      if (m != null && m.find()) {
        steal.put(key.substring("during_".length()), Double.valueOf(m.group(1)));
      }
    });
    if (steal.isEmpty()) {
      return Optional.empty();
    }
    List<String> slowed = steal.entrySet().stream().filter(e -> e.getValue() >= STEAL_NOTED_PERCENT)
        .sorted(Map.Entry.<String, Double>comparingByValue().reversed())
        .map(e -> e.getKey() + " " + e.getValue() + "%").toList();
    String name = "the hypervisor took under " + STEAL_NOTED_PERCENT + "% of the CPU (steal) in every run";
    return Optional.of(slowed.isEmpty()
        ? new Check(name, "met", "steal at most " + Collections.max(steal.values()) + "% in " + steal.size() + " runs")
        : new Check(name, "NOT met", "slowed by the hypervisor, figures understated: " + String.join(", ", slowed)));
  }

  /** The storm's own pass/fail, saying loudly when the ledger was not part of it. */
  static Check stormCheck(JsonObject storm) {
    String name = "storm: exactly one payment per key in every round";
    Integer rounds = storm.getInteger("rounds");
    Integer passed = storm.getInteger("rounds_passed");
    if (passed == null) {
      // Results written before the storm checked requests and the ledger: charges only.
      Integer oneCharge = storm.getInteger("rounds_with_one_charge");
      return new Check(name, oneCharge != null && oneCharge.equals(rounds) ? "unknown" : "NOT met",
          oneCharge + " of " + rounds + " rounds with one charge; charge requests and ledger NOT CHECKED (older result)");
    }
    String ledger = storm.getString("ledger_check", "NOT CHECKED");
    boolean ledgerChecked = !ledger.startsWith("NOT CHECKED");
    String verdict = !passed.equals(rounds) ? "NOT met"
        : ledgerChecked ? "met" : "met on the charge log only, ledger NOT CHECKED";
    return new Check(name, verdict, passed + " of " + rounds + " rounds passed (" + storm.getString("checks", "") + "); ledger: "
        + ledger);
  }

  private static boolean generatorFellBehind(JsonObject l) {
    if (l.getValue("generator_fell_behind") != null) {
      return l.getBoolean("generator_fell_behind");
    }
    return l.getValue("generator_lag_p99_ms") != null && l.getDouble("generator_lag_p99_ms") > OpenLoopCommand.FELL_BEHIND_LAG_P99_MS;
  }

  /** A row's errors, or null when it does not carry any (a tool whose errors are not read). */
  private static Long errorsOf(JsonObject l) {
    Object errors = l.getValue("errors");
    return errors instanceof Number n ? Long.valueOf(n.longValue()) : null;
  }

  /** How a row is named in a verdict: scenario (tool, target[, connections]). */
  private static String label(JsonObject l) {
    Object connections = l.getValue("connections");
    return l.getString("scenario") + " (" + l.getString("tool") + ", " + l.getString("target")
        + (connections == null || connections.equals(0) ? "" : ", " + connections + " conn.") + ")";
  }

  /** What makes a row unfit to carry a target: its errors, or errors it does not report. Null when fit. */
  private static String unfit(JsonObject l) {
    Long errors = errorsOf(l);
    if (errors == null) {
      return label(l) + " does not report its errors";
    }
    return errors > 0 ? label(l) + " had " + errors + " errors" : null;
  }

  /**
   * One ratio. {@code value} is never rounded: the verdict is decided on it, and the Markdown shows
   * as many digits as it takes for the shown number to agree with the verdict. {@code unfitInputs}
   * names input rows with errors: a target over them is not met, whatever the value.
   */
  record Ratio(String name, Double value, String target, String inputs, List<String> unfitInputs) {
    private static final Pattern TARGET = Pattern.compile("(>=|<=|>|<)\\s*([0-9.]+)");

    Ratio(String name, Double value, String target, String inputs) {
      this(name, value, target, inputs, List.of());
    }

    /** The same ratio, its inputs saying at which connection counts the two figures were measured. */
    Ratio withConcurrency(Optional<JsonObject> a, Optional<JsonObject> b) {
      if (value == null) {
        return this;
      }
      return new Ratio(name, value, target, inputs + " (at " + a.get().getValue("connections") + " and "
          + b.get().getValue("connections") + ")", unfitInputs);
    }

    JsonObject toJson() {
      return new JsonObject().put("name", name).put("value", value).put("target", target).put("verdict", verdict())
          .put("inputs", inputs).put("inputs_with_errors", new JsonArray(new ArrayList<Object>(unfitInputs)));
    }

    String verdict() {
      if (value == null) {
        return "";
      }
      if (target.isEmpty()) {
        return unfitInputs.isEmpty() ? "" : "informative; inputs had errors: " + String.join(", ", unfitInputs);
      }
      if (!unfitInputs.isEmpty()) {
        return "NOT met: " + String.join(", ", unfitInputs);
      }
      return meets(value, target) ? "met" : "NOT met";
    }

    /** The value as the Markdown shows it: three decimals, more when three would read as the other verdict. */
    String shown() {
      if (value == null) {
        return "n/a";
      }
      for (int digits = 3; digits <= 12; digits++) {
        String text = String.format(Locale.ROOT, "%." + digits + "f", value);
        if (target.isEmpty() || meets(Double.parseDouble(text), target) == meets(value, target)) {
          return text;
        }
      }
      return Double.toString(value);
    }

    static boolean meets(double value, String target) {
      Matcher m = TARGET.matcher(target.trim());
      if (!m.matches()) {
        throw new IllegalArgumentException("a target reads like >= 0.6 or < 1.0, not: " + target);
      }
      double bound = Double.parseDouble(m.group(2));
      switch (m.group(1)) {
        case ">=": return value >= bound;
        case ">": return value > bound;
        case "<=": return value <= bound;
        default: return value < bound;
      }
    }
  }

  static List<Ratio> ratios(List<JsonObject> lines, TreeMap<String, String> facts) {
    List<Ratio> out = new ArrayList<>();
    Optional<JsonObject> freshWrk = find(lines, l -> is(l, "fresh", "wrk"));
    Optional<JsonObject> naive = find(lines, l -> is(l, "pg-naive", "pgbench"));
    Optional<JsonObject> gatewaySql = find(lines, l -> is(l, "pg-gateway-sql", "pgbench"));
    Optional<JsonObject> gatewaySqlGrouped = find(lines, l -> is(l, "pg-gateway-sql-grouped", "pgbench"));
    Optional<JsonObject> replayWrk = find(lines, l -> is(l, "replay", "wrk"));
    Optional<JsonObject> bareWrk = find(lines, l -> is(l, "bare", "wrk"));
    Optional<JsonObject> storm = find(lines, l -> is(l, "storm", "loadgen-storm"));
    Optional<JsonObject> freshOpen = find(lines, l -> is(l, "fresh", "loadgen-open"));
    Optional<JsonObject> metricsOff = find(lines, l -> is(l, "fresh-metrics-off", "wrk"));
    // The fresh-key target is read from rounds in turn too (fresh keys, naive SQL, fresh keys, ...): the
    // naive SQL alone moved by half within an hour on one VM, so one run of each minutes apart
    // measured the machine more than the gateway. Results without the rounds (older runs) keep the
    // single runs as the target's reading.
    Ratio freshInTurn = medianRatio("fresh /pay (wrk) ÷ pgbench naive SQL, medians of rounds in turn, throughput",
        lines, "fresh-in-turn", "wrk", "pg-naive-in-turn", "pgbench", ">= 2.0");
    out.add(divide("fresh /pay (wrk) ÷ pgbench naive SQL, single runs, throughput", freshWrk, naive, "throughput",
        freshInTurn.value() == null ? ">= 2.0" : ""));
    out.add(freshInTurn);
    // The ceiling of the ratio above: PostgreSQL running only the gateway's SQL, grouped, with the
    // cores to itself. The gateway cannot pass it, since it also needs HTTP, Redis and the load generator.
    out.add(divide("ceiling: pgbench of the gateway's SQL grouped ÷ pgbench naive SQL, payments/s", gatewaySqlGrouped,
        naive, "throughput", ""));
    // The same two at the connection (client) count where each peaked: the gateway's throughput
    // grows with concurrency, the naive SQL's falls past a few dozen clients, so "the naive limit"
    // is the naive SQL's best figure. Informative: the target above is read at one concurrency.
    Optional<JsonObject> freshPeak = peak(lines, l -> is(l, "fresh", "wrk") || is(l, "fresh-concurrency", "wrk"));
    Optional<JsonObject> naivePeak = peak(lines, l -> is(l, "pg-naive", "pgbench") || is(l, "pg-naive-concurrency", "pgbench"));
    out.add(divide("peaks: fresh /pay (wrk) at its best connection count ÷ pgbench naive SQL at its best client count, "
        + "throughput", freshPeak, naivePeak, "throughput", "").withConcurrency(freshPeak, naivePeak));
    // The replay target is read from rounds in turn (replay, bare, replay, bare, ...): a single run
    // of each, minutes apart, moves with the machine as much as with the gateway. Where the bench
    // had no rounds in turn (older results), the single runs carry the target.
    Ratio replaysInTurn = medianRatio("replays ÷ bare Vert.x (wrk), medians of rounds in turn, throughput",
        lines, "replay-in-turn", "wrk", "bare-in-turn", "wrk", ">= 0.6");
    out.add(divide("replays (wrk) ÷ bare Vert.x (wrk), single runs, throughput", replayWrk, bareWrk, "throughput",
        replaysInTurn.value() == null ? ">= 0.6" : ""));
    out.add(replaysInTurn);
    // The issue: "409s have a lower p99 than new payments". Strictly lower.
    out.add(withSamples(divide("storm 409 p99 ÷ new-payment p99 in the same bursts",
        storm, "conflict_p99_ms", storm, "fresh_burst_p99_ms", "< 1.0"), storm));
    out.add(divide("storm 409 p99 ÷ fresh p99 (open loop, light load)",
        storm, "conflict_p99_ms", freshOpen, "p99_ms", ""));
    out.add(divide("fresh /pay (wrk) ÷ pgbench of the gateway's own SQL, throughput", freshWrk, gatewaySql, "throughput", ""));
    out.add(metricsOff.isPresent()
        ? divide("fresh /pay metrics off ÷ metrics on (wrk), throughput", metricsOff, freshWrk, "throughput", "")
        : new Ratio("fresh /pay metrics off ÷ metrics on (wrk), throughput", null, "",
            facts.getOrDefault("metrics_off", "n/a: not run")));
    Optional<JsonObject> replayMetricsOff = find(lines, l -> is(l, "replay-metrics-off", "wrk"));
    Optional<JsonObject> replayNoCache = find(lines, l -> is(l, "replay-no-cache", "wrk"));
    Optional<JsonObject> freshNoLog = find(lines, l -> is(l, "fresh-no-access-log", "wrk"));
    Optional<JsonObject> replayNoLog = find(lines, l -> is(l, "replay-no-access-log", "wrk"));
    out.add(divide("replays metrics off ÷ metrics on (wrk), throughput", replayMetricsOff, replayWrk, "throughput", ""));
    out.add(divide("fresh /pay without ÷ with the access log (wrk), throughput", freshNoLog, freshWrk, "throughput", ""));
    out.add(divide("replays without ÷ with the access log (wrk), throughput", replayNoLog, replayWrk, "throughput", ""));
    out.add(divide("replays without ÷ with the in-process replay cache (wrk), throughput", replayNoCache, replayWrk,
        "throughput", ""));
    out.add(divide("replays without the replay cache (wrk) ÷ bare Vert.x (wrk), throughput", replayNoCache, bareWrk,
        "throughput", ""));
    Optional<JsonObject> freshClosed = find(lines, l -> is(l, "fresh", "loadgen-closed"));
    Optional<JsonObject> freshH2cClosed = find(lines, l -> is(l, "fresh-h2c", "loadgen-closed"));
    out.add(divide("fresh /pay over h2c ÷ over HTTP/1.1 (loadgen, closed loop), throughput", freshH2cClosed, freshClosed,
        "throughput", ""));
    Optional<JsonObject> freshOneVerticle = find(lines, l -> is(l, "fresh-one-api-verticle", "wrk"));
    Optional<JsonObject> replayOneVerticle = find(lines, l -> is(l, "replay-one-api-verticle", "wrk"));
    out.add(divide("fresh /pay one API verticle ÷ one per core (wrk), throughput", freshOneVerticle, freshWrk,
        "throughput", ""));
    out.add(divide("replays one API verticle ÷ one per core (wrk), throughput", replayOneVerticle, replayWrk,
        "throughput", ""));
    // The control: the default gateway started again after the variants. Its distance from 1.0 is
    // the spread every variant ratio above sits in.
    Optional<JsonObject> freshAgain = find(lines, l -> is(l, "fresh-default-again", "wrk"));
    Optional<JsonObject> replayAgain = find(lines, l -> is(l, "replay-default-again", "wrk"));
    out.add(divide("control: fresh /pay, the default gateway again after the variants ÷ its first run (wrk), throughput",
        freshAgain, freshWrk, "throughput", ""));
    out.add(divide("control: replays, the default gateway again after the variants ÷ its first run (wrk), throughput",
        replayAgain, replayWrk, "throughput", ""));
    return out;
  }

  private static Ratio divide(String name, Optional<JsonObject> a, Optional<JsonObject> b, String field, String target) {
    return divide(name, a, field, b, field, target);
  }

  /**
   * {@code a.aField ÷ b.bField}, or n/a when either figure is missing (or the divisor is 0); the
   * rows with errors among a and b go with it.
   */
  private static Ratio divide(String name, Optional<JsonObject> a, String aField, Optional<JsonObject> b, String bField,
      String target) {
    if (a.isEmpty() || b.isEmpty() || a.get().getValue(aField) == null || b.get().getDouble(bField, 0.0) == 0.0) {
      return new Ratio(name, null, target, "n/a: a scenario is missing");
    }
    return new Ratio(name, a.get().getDouble(aField) / b.get().getDouble(bField), target,
        a.get().getValue(aField) + " / " + b.get().getValue(bField), unfit(a.get() == b.get() ? List.of(a.get())
            : List.of(a.get(), b.get())));
  }

  private static List<String> unfit(List<JsonObject> rows) {
    return rows.stream().map(ReportCommand::unfit).filter(java.util.Objects::nonNull).toList();
  }

  /** The storm ratio's inputs with the sample sizes behind each p99: a p99 of a hundred 409s is close to their maximum. */
  private static Ratio withSamples(Ratio ratio, Optional<JsonObject> storm) {
    if (ratio.value() == null) {
      return ratio;
    }
    JsonObject s = storm.get();
    return new Ratio(ratio.name(), ratio.value(), ratio.target(), ratio.inputs() + " (p99 of " + s.getValue("conflict_409")
        + " 409s / of " + s.getValue("fresh_burst_201", s.getValue("fresh_burst_responses")) + " new payments)",
        ratio.unfitInputs());
  }

  private static boolean is(JsonObject line, String scenario, String tool) {
    return scenario.equals(line.getString("scenario")) && tool.equals(line.getString("tool"));
  }

  private static Optional<JsonObject> find(List<JsonObject> lines, Predicate<JsonObject> which) {
    return lines.stream().filter(which).findFirst();
  }

  /**
   * The median throughput of the {@code toolA} rows of scenario {@code a} ÷ that of the {@code toolB}
   * rows of scenario {@code b} (the lower middle for an even count), with every round's figure in the
   * inputs; n/a without both. A round with errors, median or not, spoils a target.
   */
  static Ratio medianRatio(String name, List<JsonObject> lines, String a, String toolA, String b, String toolB,
      String target) {
    List<JsonObject> rowsA = rows(lines, a, toolA);
    List<JsonObject> rowsB = rows(lines, b, toolB);
    List<Double> as = rowsA.stream().map(l -> l.getDouble("throughput")).toList();
    List<Double> bs = rowsB.stream().map(l -> l.getDouble("throughput")).toList();
    if (as.isEmpty() || bs.isEmpty() || median(bs) == 0.0) {
      return new Ratio(name, null, target, "n/a: a scenario is missing");
    }
    double medianA = median(as);
    double medianB = median(bs);
    List<JsonObject> all = new ArrayList<>(rowsA);
    all.addAll(rowsB);
    return new Ratio(name, medianA / medianB, target,
        medianA + " / " + medianB + " (rounds " + as + " / " + bs + ")", unfit(all));
  }

  private static List<JsonObject> rows(List<JsonObject> lines, String scenario, String tool) {
    return lines.stream().filter(l -> is(l, scenario, tool) && l.getValue("throughput") != null).toList();
  }

  private static double median(List<Double> values) {
    List<Double> sorted = values.stream().sorted().toList();
    return sorted.get((sorted.size() - 1) / 2);
  }

  /** The line with the highest throughput among those chosen. */
  private static Optional<JsonObject> peak(List<JsonObject> lines, Predicate<JsonObject> which) {
    return lines.stream().filter(which).filter(l -> l.getValue("throughput") != null)
        .max(java.util.Comparator.comparingDouble(l -> l.getDouble("throughput")));
  }

  static String markdown(List<JsonObject> lines, List<Check> checks, List<Ratio> ratios, TreeMap<String, String> facts) {
    StringBuilder md = new StringBuilder();
    md.append("# Idemgate bench ").append(facts.getOrDefault("timestamp", "")).append("\n\n");
    String failed = failedSteps(facts);
    if (!failed.isEmpty()) {
      md.append("> **INCOMPLETE RUN: these steps failed: ").append(failed.replace("|", "/"))
          .append(".** Their rows are missing or partial, and the ratios over them say n/a or rest on what remains.\n\n");
    }
    if (!facts.isEmpty()) {
      facts.forEach((k, v) -> md.append("- ").append(k).append(": ").append(v).append('\n'));
      md.append('\n');
    }
    md.append("| scenario | tool | target | loop | protocol | conc. | rate/s | throughput/s | p50 ms | p99 ms | p99.9 ms | errors | detail |\n");
    md.append("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (JsonObject l : lines) {
      md.append("| ").append(l.getString("scenario"))
          .append(" | ").append(l.getString("tool"))
          .append(" | ").append(l.getString("target"))
          .append(" | ").append(l.getString("loop"))
          .append(" | ").append(l.getString("protocol"))
          .append(" | ").append(cell(l.getValue("connections")))
          .append(" | ").append(cell(l.getValue("rate")))
          .append(" | ").append(cell(l.getValue("throughput")))
          .append(" | ").append(cell(l.getValue("p50_ms")))
          .append(" | ").append(cell(l.getValue("p99_ms")))
          .append(" | ").append(cell(l.getValue("p999_ms")))
          .append(" | ").append(cell(l.getValue("errors")))
          .append(" | ").append(detail(l)).append(" |\n");
    }
    md.append("\n| check | verdict | detail |\n|---|---|---|\n");
    for (Check c : checks) {
      md.append("| ").append(c.name()).append(" | ").append(c.verdict()).append(" | ").append(c.detail().replace("|", "/"))
          .append(" |\n");
    }
    md.append("\n| ratio | value | target | verdict | inputs |\n|---|---:|---|---|---|\n");
    for (Ratio r : ratios) {
      md.append("| ").append(r.name()).append(" | ").append(r.shown())
          .append(" | ").append(r.target()).append(" | ").append(r.verdict().replace("|", "/"))
          .append(" | ").append(r.inputs()).append(" |\n");
    }
    return md.toString();
  }

  private static String cell(Object value) {
    return value == null ? "" : String.valueOf(value);
  }

  private static String detail(JsonObject l) {
    List<String> parts = new ArrayList<>();
    JsonObject statuses = l.getJsonObject("statuses");
    if (statuses != null && !statuses.isEmpty()) {
      parts.add("statuses " + statuses.encode());
    }
    JsonObject unexpected = l.getJsonObject("unexpected_statuses");
    if (unexpected != null && !unexpected.isEmpty()) {
      parts.add("unexpected " + unexpected.encode());
    }
    JsonObject failures = l.getJsonObject("failures");
    if (failures != null && !failures.isEmpty()) {
      parts.add("failures " + failures.encode());
    }
    if (l.containsKey("rounds")) {
      boolean older = l.getValue("rounds_passed") == null;
      parts.add(String.format(Locale.ROOT, "rounds %d, %s %d; ledger %s; 201 created %d, 201 replayed %d, %d 409s "
              + "(409 p99 %s ms); same bursts with a new key per request: %s 201s (p99 %s ms), %s errors %s",
          l.getInteger("rounds"), older ? "one charge in" : "passed", older ? l.getInteger("rounds_with_one_charge")
              : l.getInteger("rounds_passed"), l.getString("ledger_check", "NOT CHECKED"),
          l.getLong("created_201"), l.getLong("replayed_201"), l.getLong("conflict_409"), l.getValue("conflict_p99_ms"),
          l.getValue("fresh_burst_201", "?"), l.getValue("fresh_burst_p99_ms"), l.getValue("fresh_burst_errors", "?"),
          l.getJsonObject("fresh_burst_statuses", new JsonObject()).encode()));
    }
    if (l.getLong("replayed", 0L) > 0) {
      parts.add("replayed " + l.getLong("replayed"));
    }
    if (l.getValue("generator_lag_p99_ms") != null) {
      double lag = l.getDouble("generator_lag_p99_ms");
      Object max = l.getValue("generator_lag_max_ms");
      parts.add((generatorFellBehind(l) ? "GENERATOR FELL BEHIND (send lag p99 " + lag + " ms): latencies overstated"
          : "send lag p99 " + lag + " ms") + (max == null ? "" : ", max " + max + " ms"));
    }
    if (l.getLong("duplicates_sent", 0L) > 0) {
      parts.add("duplicates sent " + l.getLong("duplicates_sent"));
    }
    if (l.containsKey("note")) {
      parts.add(l.getString("note"));
    }
    return String.join("; ", parts).replace("|", "/");
  }
}
