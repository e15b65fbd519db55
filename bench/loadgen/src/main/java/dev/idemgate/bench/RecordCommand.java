package dev.idemgate.bench;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.HdrHistogram.Histogram;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Turns what an external tool printed (wrk, pgbench, redis-benchmark, h2load) into one result line
 * in the same shape as the load generator's, so the report compares like with like.
 */
@Command(name = "record", mixinStandardHelpOptions = true,
    description = "Convert an external tool's output into a result line (JSON Lines).")
final class RecordCommand implements Callable<Integer> {
  private static final Pattern PGBENCH_TPS = Pattern.compile("tps = ([0-9.]+) \\(without initial connection time\\)");
  private static final Pattern PGBENCH_FAILED = Pattern.compile("number of failed transactions: (\\d+)");
  private static final Pattern PGBENCH_DURATION = Pattern.compile("duration: (\\d+) s");
  private static final Pattern H2LOAD_FINISHED = Pattern.compile("finished in ([0-9.]+)(ms|s), ([0-9.]+) req/s");
  private static final Pattern H2LOAD_REQUESTS = Pattern.compile(
      "requests: (\\d+) total, (\\d+) started, (\\d+) done, (\\d+) succeeded, (\\d+) failed, (\\d+) errored, (\\d+) timeout");

  @Option(names = "--tool", required = true, description = "wrk, pgbench, redis-benchmark or h2load.")
  String tool;

  @Option(names = "--input", required = true, description = "What the tool printed.")
  Path input;

  @Option(names = "--log", description = "pgbench: the per-transaction log prefix (-l --log-prefix); h2load: its --log-file.")
  String log;

  @Option(names = "--scenario", required = true, description = "Scenario name.")
  String scenario;

  @Option(names = "--target-name", defaultValue = "gateway", description = "What was measured.")
  String targetName;

  @Option(names = "--protocol", defaultValue = "http/1.1", description = "Protocol label.")
  String protocol;

  @Option(names = "--connections", defaultValue = "0", description = "Concurrency the tool ran with.")
  int connections;

  @Option(names = "--per-transaction", defaultValue = "1",
      description = "pgbench: payments one transaction carries; throughput and requests count payments, latencies stay "
          + "per transaction. Default: ${DEFAULT-VALUE}.")
  int perTransaction = 1;

  @Option(names = "--note", description = "A note for the report.")
  String note;

  @Option(names = "--results", description = "JSON Lines file to append the result to.")
  Path results;

  @Override
  public Integer call() throws IOException {
    String text = Files.readString(input, StandardCharsets.UTF_8);
    JsonObject figures;
    switch (tool) {
      case "wrk": figures = wrk(text); break;
      case "pgbench": figures = pgbench(text); break;
      case "redis-benchmark": figures = redisBenchmark(text); break;
      case "h2load": figures = h2load(text); break;
      default: throw new IllegalArgumentException("--tool must be wrk, pgbench, redis-benchmark or h2load");
    }
    JsonObject line = Results.line(scenario, tool, targetName, "closed", protocol)
        .put("connections", connections).mergeIn(figures);
    if (note != null) {
      line.put("note", note);
    }
    Results.append(results, line);
    return 0;
  }

  /** bench/wrk/*.lua print one line {@code WRK_JSON {...}} from their done() callback. */
  static JsonObject wrk(String text) {
    for (String row : text.split("\n")) {
      if (row.startsWith("WRK_JSON ")) {
        return new JsonObject(row.substring("WRK_JSON ".length()));
      }
    }
    throw new IllegalArgumentException("no WRK_JSON line in the wrk output: was it run with a bench/wrk script?");
  }

  JsonObject pgbench(String text) throws IOException {
    double tps = Double.parseDouble(find(PGBENCH_TPS, text, "tps"));
    Matcher failed = PGBENCH_FAILED.matcher(text);
    long failures = failed.find() ? Long.parseLong(failed.group(1)) : 0;
    double seconds = Double.parseDouble(find(PGBENCH_DURATION, text, "duration"));
    Histogram latencies = new Histogram(120_000_000L, 3);
    if (log != null) {
      for (Path file : logFiles(log)) {
        for (String row : Files.readAllLines(file, StandardCharsets.UTF_8)) {
          // client_id transaction_no time script_no time_epoch time_us ...: time is the latency in µs
          String[] columns = row.trim().split("\\s+");
          if (columns.length >= 3 && columns[2].chars().allMatch(Character::isDigit)) {
            latencies.recordValue(Math.max(1, Math.min(120_000_000L, Long.parseLong(columns[2]))));
          }
        }
      }
    }
    double payments = tps * perTransaction;
    return new JsonObject().put("requests", Math.round(payments * seconds)).put("duration_s", seconds)
        .put("throughput", LatencyRecorder.round(payments)).put("errors", failures)
        .mergeIn(LatencyRecorder.percentiles(latencies));
  }

  private static List<Path> logFiles(String prefix) throws IOException {
    Path p = Path.of(prefix).toAbsolutePath();
    List<Path> files = new ArrayList<>();
    try (DirectoryStream<Path> dir = Files.newDirectoryStream(p.getParent(), p.getFileName() + ".*")) {
      dir.forEach(files::add);
    }
    return files;
  }

  /** What redis-benchmark prints (on stderr) for an error reply. */
  private static final String REDIS_ERROR_LINE = "Error from server";

  /**
   * redis-benchmark --csv (stdout and stderr together): a header row, then one row per test. No
   * p99.9 is printed. The tool does not count error replies: redis-benchmark 7 prints "Error from
   * server: ..." and exits 1 at the first one, leaving no row (so a row it finished has none);
   * older versions go on, printing that line at most once a second (with -e). The row's errors are
   * those lines: exact for 7 (0), a lower bound for the older ones.
   */
  static JsonObject redisBenchmark(String text) {
    List<String> csv = new ArrayList<>();
    List<String> errorLines = new ArrayList<>();
    for (String line : text.strip().split("\n")) {
      if (line.contains(REDIS_ERROR_LINE)) {
        errorLines.add(line.strip());
      } else if (line.startsWith("\"")) {
        csv.add(line);
      }
    }
    if (csv.size() < 2 || !csv.get(0).startsWith("\"test\"")) {
      throw new IllegalArgumentException("no CSV header and row in the redis-benchmark output (was it run with --csv?)"
          + (errorLines.isEmpty() ? "" : "; it stopped at an error reply: " + errorLines.get(0)));
    }
    String[] header = unquote(csv.get(0));
    String[] values = unquote(csv.get(csv.size() - 1));
    Map<String, String> row = new TreeMap<>();
    for (int i = 0; i < header.length && i < values.length; i++) {
      row.put(header[i], values[i]);
    }
    return new JsonObject().put("throughput", LatencyRecorder.round(Double.parseDouble(row.get("rps"))))
        .put("errors", errorLines.size())
        .put("errors_read_as", "'" + REDIS_ERROR_LINE + "' lines: redis-benchmark 7 stops at the first error reply, "
            + "older versions show at most one a second (a lower bound)")
        .put("p50_ms", Double.parseDouble(row.get("p50_latency_ms")))
        .put("p99_ms", Double.parseDouble(row.get("p99_latency_ms")))
        .put("max_ms", Double.parseDouble(row.get("max_latency_ms")))
        .put("command", row.get("test"));
  }

  private static String[] unquote(String csvRow) {
    String[] cells = csvRow.split("\",\"");
    for (int i = 0; i < cells.length; i++) {
      cells[i] = cells[i].replace("\"", "");
    }
    return cells;
  }

  /** h2load: totals from its summary, percentiles from --log-file (start µs, status, duration µs). */
  JsonObject h2load(String text) throws IOException {
    Matcher finished = H2LOAD_FINISHED.matcher(text);
    if (!finished.find()) {
      throw new IllegalArgumentException("no 'finished in' line in the h2load output");
    }
    double seconds = Double.parseDouble(finished.group(1)) / (finished.group(2).equals("ms") ? 1000 : 1);
    Matcher requests = H2LOAD_REQUESTS.matcher(text);
    // h2load's "failed" already includes non-2xx/3xx answers, "errored" and "timeout".
    long failed = requests.find() ? Long.parseLong(requests.group(5)) : -1;
    Histogram latencies = new Histogram(120_000_000L, 3);
    Map<String, Long> statuses = new TreeMap<>();
    long unexpected = 0;
    if (log != null) {
      for (String row : Files.readAllLines(Path.of(log), StandardCharsets.UTF_8)) {
        String[] columns = row.trim().split("\\s+");
        if (columns.length >= 3) {
          latencies.recordValue(Math.max(1, Math.min(120_000_000L, Long.parseLong(columns[2]))));
          statuses.merge(columns[1], 1L, Long::sum);
          if (!columns[1].startsWith("2")) {
            unexpected++;
          }
        }
      }
    }
    return new JsonObject().put("requests", latencies.getTotalCount()).put("duration_s", seconds)
        .put("throughput", LatencyRecorder.round(Double.parseDouble(finished.group(3))))
        .put("errors", failed >= 0 ? failed : unexpected).put("statuses", new JsonObject(new TreeMap<String, Object>(statuses)))
        .mergeIn(LatencyRecorder.percentiles(latencies));
  }

  private static String find(Pattern pattern, String text, String what) {
    Matcher m = pattern.matcher(text);
    if (!m.find()) {
      throw new IllegalArgumentException("no " + what + " in the tool output");
    }
    return m.group(1);
  }
}
