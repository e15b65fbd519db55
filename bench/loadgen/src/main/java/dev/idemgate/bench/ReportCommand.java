package dev.idemgate.bench;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.function.Predicate;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The one table of a bench run, with the ratios the issue asks for, as Markdown and as JSON. A
 * ratio whose inputs are missing (scenario skipped or failed) says n/a rather than guessing.
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
    }
    List<Ratio> ratios = ratios(lines, facts);
    String md = markdown(lines, ratios, facts);
    System.out.println(md);
    if (markdown != null) {
      Files.writeString(markdown, md, StandardCharsets.UTF_8);
    }
    if (json != null) {
      JsonArray ratioJson = new JsonArray();
      ratios.forEach(r -> ratioJson.add(r.toJson()));
      JsonObject report = new JsonObject().put("run", new JsonObject(new TreeMap<String, Object>(facts)))
          .put("results", new JsonArray(new ArrayList<Object>(lines))).put("ratios", ratioJson);
      Files.writeString(json, report.encodePrettily() + "\n", StandardCharsets.UTF_8);
    }
    return 0;
  }

  record Ratio(String name, Double value, String target, String inputs) {
    /** The same ratio, its inputs saying at which connection counts the two figures were measured. */
    Ratio withConcurrency(Optional<JsonObject> a, Optional<JsonObject> b) {
      if (value == null) {
        return this;
      }
      return new Ratio(name, value, target, inputs + " (at " + a.get().getValue("connections") + " and "
          + b.get().getValue("connections") + ")");
    }

    JsonObject toJson() {
      return new JsonObject().put("name", name).put("value", value).put("target", target).put("inputs", inputs);
    }

    String verdict() {
      if (value == null || target.isEmpty()) {
        return "";
      }
      double bound = Double.parseDouble(target.replaceAll("[^0-9.]", ""));
      boolean met = target.startsWith(">=") ? value >= bound : value <= bound;
      return met ? "met" : "NOT met";
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
    out.add(divide("fresh /pay (wrk) ÷ pgbench naive SQL, throughput", freshWrk, naive, "throughput", ">= 2.0"));
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
        lines, "replay-in-turn", "bare-in-turn", ">= 0.6");
    out.add(divide("replays (wrk) ÷ bare Vert.x (wrk), single runs, throughput", replayWrk, bareWrk, "throughput",
        replaysInTurn.value() == null ? ">= 0.6" : ""));
    out.add(replaysInTurn);
    out.add(divide("storm 409 p99 ÷ new-payment p99 in the same bursts",
        storm, "conflict_p99_ms", storm, "fresh_burst_p99_ms", "<= 1.0"));
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

  /** {@code a.aField ÷ b.bField}, or n/a when either figure is missing (or the divisor is 0). */
  private static Ratio divide(String name, Optional<JsonObject> a, String aField, Optional<JsonObject> b, String bField,
      String target) {
    if (a.isEmpty() || b.isEmpty() || a.get().getValue(aField) == null || b.get().getDouble(bField, 0.0) == 0.0) {
      return new Ratio(name, null, target, "n/a: a scenario is missing");
    }
    return new Ratio(name, round4(a.get().getDouble(aField) / b.get().getDouble(bField)), target,
        a.get().getValue(aField) + " / " + b.get().getValue(bField));
  }

  private static boolean is(JsonObject line, String scenario, String tool) {
    return scenario.equals(line.getString("scenario")) && tool.equals(line.getString("tool"));
  }

  private static Optional<JsonObject> find(List<JsonObject> lines, Predicate<JsonObject> which) {
    return lines.stream().filter(which).findFirst();
  }

  /**
   * The median throughput of the wrk rows of scenario {@code a} ÷ that of scenario {@code b} (the
   * lower middle for an even count), with every round's figure in the inputs; n/a without both.
   */
  static Ratio medianRatio(String name, List<JsonObject> lines, String a, String b, String target) {
    List<Double> as = throughputs(lines, a);
    List<Double> bs = throughputs(lines, b);
    if (as.isEmpty() || bs.isEmpty() || median(bs) == 0.0) {
      return new Ratio(name, null, target, "n/a: a scenario is missing");
    }
    double medianA = median(as);
    double medianB = median(bs);
    return new Ratio(name, round4(medianA / medianB), target,
        medianA + " / " + medianB + " (rounds " + as + " / " + bs + ")");
  }

  private static List<Double> throughputs(List<JsonObject> lines, String scenario) {
    return lines.stream().filter(l -> is(l, scenario, "wrk") && l.getValue("throughput") != null)
        .map(l -> l.getDouble("throughput")).toList();
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

  /** Four decimals kept, so that a verdict is never decided by rounding (0.5991 is below 0.6). */
  private static Double round4(double v) {
    return Math.round(v * 10_000.0) / 10_000.0;
  }

  static String markdown(List<JsonObject> lines, List<Ratio> ratios, TreeMap<String, String> facts) {
    StringBuilder md = new StringBuilder();
    md.append("# Idemgate bench ").append(facts.getOrDefault("timestamp", "")).append("\n\n");
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
    md.append("\n| ratio | value | target | verdict | inputs |\n|---|---:|---|---|---|\n");
    for (Ratio r : ratios) {
      md.append("| ").append(r.name()).append(" | ").append(r.value() == null ? "n/a" : String.format(Locale.ROOT, "%.3f", r.value()))
          .append(" | ").append(r.target()).append(" | ").append(r.verdict()).append(" | ").append(r.inputs()).append(" |\n");
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
    JsonObject failures = l.getJsonObject("failures");
    if (failures != null && !failures.isEmpty()) {
      parts.add("failures " + failures.encode());
    }
    if (l.containsKey("rounds")) {
      parts.add(String.format(Locale.ROOT, "rounds %d, one charge in %d; 201 created %d, 201 replayed %d, 409 %d; "
              + "409 p99 %s ms; same bursts with a new key per request: p99 %s ms",
          l.getInteger("rounds"), l.getInteger("rounds_with_one_charge"), l.getLong("created_201"),
          l.getLong("replayed_201"), l.getLong("conflict_409"), l.getValue("conflict_p99_ms"),
          l.getValue("fresh_burst_p99_ms")));
    }
    if (l.getLong("replayed", 0L) > 0) {
      parts.add("replayed " + l.getLong("replayed"));
    }
    if (l.getValue("generator_lag_p99_ms") != null) {
      double lag = l.getDouble("generator_lag_p99_ms");
      parts.add(lag > 10 ? "GENERATOR FELL BEHIND (send lag p99 " + lag + " ms): latencies overstated"
          : "send lag p99 " + lag + " ms");
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
