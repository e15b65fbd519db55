package dev.idemgate.bench;

import static dev.idemgate.bench.BenchTests.ratio;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.TreeMap;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ToolOutputTest {
  @TempDir Path dir;

  @Test
  @DisplayName("wrk figures come from the WRK_JSON line of bench/wrk/pay.lua")
  void wrkLine() {
    JsonObject f = RecordCommand.wrk("Running 3s test @ http://127.0.0.1/pay\nWRK_JSON {\"throughput\":1234.5,\"p99_ms\":9.5}\n");
    assertEquals(1234.5, f.getDouble("throughput"));
    assertThrows(IllegalArgumentException.class, () -> RecordCommand.wrk("Requests/sec: 10\n"));
  }

  @Test
  @DisplayName("pgbench: tps and failures from its summary, percentiles from the per-transaction log")
  void pgbench() throws Exception {
    Files.writeString(dir.resolve("pgbench-x.123"), "0 0 1000 0 1700000000 1\n0 1 3000 0 1700000000 2\n");
    Files.writeString(dir.resolve("pgbench-x.123.1"), "1 0 2000 0 1700000000 1\n");
    JsonObject f = recordPgbench("duration: 3 s\nnumber of failed transactions: 2 (0.1%)\n"
        + "tps = 1500.25 (without initial connection time)\n", "pgbench-x", 1);
    assertEquals(1500.3, f.getDouble("throughput"));
    assertEquals(2L, f.getLong("errors"));
    assertEquals(2.0, f.getDouble("p50_ms"), 0.01);
    assertEquals(3.0, f.getDouble("max_ms"), 0.01);
  }

  @Test
  @DisplayName("pgbench with several payments per transaction: throughput counts payments, latency stays per transaction")
  void pgbenchGrouped() throws Exception {
    Files.writeString(dir.resolve("pgbench-g.7"), "0 0 4000 0 1700000000 1\n");
    JsonObject f = recordPgbench("duration: 2 s\nnumber of failed transactions: 0 (0.000%)\n"
        + "tps = 1000.00 (without initial connection time)\n", "pgbench-g", 16);
    assertEquals(16000.0, f.getDouble("throughput"));
    assertEquals(32000L, f.getLong("requests"));
    assertEquals(4.0, f.getDouble("p50_ms"), 0.01);
  }

  /** What {@code record --tool pgbench} makes of a summary, with its per-transaction log files in {@code dir}. */
  private JsonObject recordPgbench(String summary, String logPrefix, int perTransaction) throws Exception {
    RecordCommand record = new RecordCommand();
    record.log = dir.resolve(logPrefix).toString();
    record.perTransaction = perTransaction;
    return record.pgbench(summary);
  }

  @Test
  @DisplayName("redis-benchmark --csv gives throughput and p50/p99, no p99.9")
  void redisCsv() {
    JsonObject f = RecordCommand.redisBenchmark("\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\","
        + "\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n"
        + "\"SET k val NX GET PX 30000\",\"23255.81\",\"0.109\",\"0.024\",\"0.079\",\"0.119\",\"1.087\",\"5.799\"\n");
    assertEquals(23255.8, f.getDouble("throughput"));
    assertEquals(1.087, f.getDouble("p99_ms"));
    assertNull(f.getValue("p999_ms"));
    assertEquals(0L, f.getLong("errors"), "no error line: none (redis-benchmark 7 stops at the first)");
  }

  @Test
  @DisplayName("redis-benchmark error replies: its 'Error from server' lines are the row's errors; a run it stopped has no row")
  void redisErrors() {
    String header = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\","
        + "\"p99_latency_ms\",\"max_latency_ms\"\n";
    // An older redis-benchmark goes on after error replies, printing one line a second at most.
    JsonObject f = RecordCommand.redisBenchmark(header + "Error from server: OOM command not allowed\n"
        + "\"SET k val NX GET PX 30000\",\"23255.81\",\"0.109\",\"0.024\",\"0.079\",\"0.119\",\"1.087\",\"5.799\"\n"
        + "Error from server: OOM command not allowed\n");
    assertEquals(2L, f.getLong("errors"));
    assertEquals(23255.8, f.getDouble("throughput"));
    // What redis-benchmark 7.0.15 printed (stdout and stderr together) for an unknown command: it exits 1 at the first error.
    IllegalArgumentException stopped = assertThrows(IllegalArgumentException.class, () -> RecordCommand.redisBenchmark(
        header + "\nError from server: ERR unknown command 'NOSUCH', with args beginning with: \n"));
    assertTrue(stopped.getMessage().contains("ERR unknown command"), stopped.getMessage());
  }

  @Test
  @DisplayName("h2load: rate from its summary, statuses and percentiles from --log-file")
  void h2load() throws Exception {
    Path log = dir.resolve("h2.log");
    Files.writeString(log, "1700000000000000\t201\t1500\n1700000000000100\t201\t2500\n1700000000000200\t503\t900\n");
    RecordCommand record = new RecordCommand();
    record.log = log.toString();
    JsonObject f = record.h2load("finished in 3.00s, 2755.33 req/s, 2.1MB/s\n"
        + "requests: 3 total, 3 started, 3 done, 2 succeeded, 1 failed, 0 errored, 0 timeout\n");
    assertEquals(2755.3, f.getDouble("throughput"));
    assertEquals(1L, f.getLong("errors"), "h2load counts the 503 among its failed requests");
    assertEquals(2L, f.getJsonObject("statuses").getLong("201"));
  }

  @Test
  @DisplayName("a key's body is the same on every send, so a replay is never taken for key reuse")
  void deterministicBodies() {
    PaymentTraffic traffic = new PaymentTraffic("p", 5);
    for (long n = 0; n < 200; n++) {
      assertEquals(traffic.body(n), traffic.body(n));
    }
    long declines = java.util.stream.LongStream.range(0, 10_000).filter(traffic::declines).count();
    assertEquals(500, declines, 100);
  }

  @Test
  @DisplayName("durations read as the runner writes them")
  void durations() {
    assertEquals(Duration.ofSeconds(10), BenchDurations.parse("10s"));
    assertEquals(Duration.ofSeconds(7), BenchDurations.parse("7"));
    assertEquals(Duration.ofMillis(500), BenchDurations.parse("500ms"));
    assertEquals(Duration.ofMinutes(2), BenchDurations.parse("2m"));
    assertThrows(IllegalArgumentException.class, () -> BenchDurations.parse("ten"));
  }

  @Test
  @DisplayName("ratios: computed when both sides ran, n/a when one is missing")
  void ratios() {
    List<JsonObject> lines = List.of(
        new JsonObject().put("scenario", "fresh").put("tool", "wrk").put("throughput", 3000.0).put("errors", 0),
        new JsonObject().put("scenario", "pg-naive").put("tool", "pgbench").put("throughput", 1500.0).put("errors", 0),
        new JsonObject().put("scenario", "replay").put("tool", "wrk").put("throughput", 20000.0).put("errors", 0),
        new JsonObject().put("scenario", "pg-gateway-sql-grouped").put("tool", "pgbench").put("throughput", 2250.0).put("errors", 0));
    List<ReportCommand.Ratio> ratios = ReportCommand.ratios(lines, new TreeMap<>());
    ReportCommand.Ratio fresh = ratio(ratios, "fresh /pay (wrk) ÷ pgbench naive SQL");
    assertEquals(2.0, fresh.value());
    assertEquals("met", fresh.verdict());
    ReportCommand.Ratio ceiling = ratio(ratios, "ceiling: pgbench of the gateway's SQL grouped ÷ pgbench naive SQL");
    assertEquals(1.5, ceiling.value());
    assertEquals("2250.0 / 1500.0", ceiling.inputs());
    assertNull(ratio(ratios, "replays (wrk) ÷ bare Vert.x (wrk)").value(), "no bare run: no ratio");
  }

  @Test
  @DisplayName("peak ratio: each side at the connection count where it ran fastest")
  void peakRatio() {
    List<JsonObject> lines = List.of(
        new JsonObject().put("scenario", "fresh").put("tool", "wrk").put("connections", 32).put("throughput", 3000.0).put("errors", 0),
        new JsonObject().put("scenario", "fresh-concurrency").put("tool", "wrk").put("connections", 128)
            .put("throughput", 5000.0).put("errors", 0),
        new JsonObject().put("scenario", "fresh-concurrency").put("tool", "wrk").put("connections", 256)
            .put("throughput", 4500.0).put("errors", 0),
        new JsonObject().put("scenario", "pg-naive").put("tool", "pgbench").put("connections", 32).put("throughput", 2500.0).put("errors", 0),
        new JsonObject().put("scenario", "pg-naive-concurrency").put("tool", "pgbench").put("connections", 64)
            .put("throughput", 2000.0).put("errors", 0));
    List<ReportCommand.Ratio> ratios = ReportCommand.ratios(lines, new TreeMap<>());
    ReportCommand.Ratio peaks = ratio(ratios, "peaks: fresh /pay (wrk) at its best connection count");
    assertEquals(2.0, peaks.value());
    assertEquals("5000.0 / 2500.0 (at 128 and 32)", peaks.inputs());
    assertEquals("", peaks.verdict(), "informative: the target is read at one concurrency");
    assertEquals(1.2, ratio(ratios, "fresh /pay (wrk) ÷ pgbench naive SQL").value(), "the target's ratio stays at --connections");
  }

  @Test
  @DisplayName("control ratios: the default gateway's second run against its first, fresh keys and replays")
  void controlRatios() {
    List<JsonObject> lines = List.of(
        new JsonObject().put("scenario", "fresh").put("tool", "wrk").put("throughput", 5000.0).put("errors", 0),
        new JsonObject().put("scenario", "fresh-default-again").put("tool", "wrk").put("throughput", 6000.0).put("errors", 0),
        new JsonObject().put("scenario", "replay").put("tool", "wrk").put("throughput", 60000.0).put("errors", 0),
        new JsonObject().put("scenario", "replay-default-again").put("tool", "wrk").put("throughput", 48000.0).put("errors", 0));
    List<ReportCommand.Ratio> ratios = ReportCommand.ratios(lines, new TreeMap<>());
    assertEquals(1.2, ratio(ratios, "control: fresh /pay").value());
    assertEquals(0.8, ratio(ratios, "control: replays").value());
    assertEquals("", ratio(ratios, "control: replays").verdict(), "informative");
    assertNull(ReportCommand.ratios(lines.subList(0, 1), new TreeMap<>()).stream()
        .filter(r -> r.name().startsWith("control: fresh")).findFirst().orElseThrow().value(), "no second run: no ratio");
  }

  @Test
  @DisplayName("replay target: the median of the replay rounds ÷ the median of the bare rounds; the single runs then carry no target")
  void replayTargetFromRoundsInTurn() {
    List<JsonObject> lines = List.of(
        new JsonObject().put("scenario", "replay").put("tool", "wrk").put("throughput", 50000.0).put("errors", 0),
        new JsonObject().put("scenario", "bare").put("tool", "wrk").put("throughput", 100000.0).put("errors", 0),
        new JsonObject().put("scenario", "replay-in-turn").put("tool", "wrk").put("throughput", 70000.0).put("errors", 0),
        new JsonObject().put("scenario", "bare-in-turn").put("tool", "wrk").put("throughput", 90000.0).put("errors", 0),
        new JsonObject().put("scenario", "replay-in-turn").put("tool", "wrk").put("throughput", 60000.0).put("errors", 0),
        new JsonObject().put("scenario", "bare-in-turn").put("tool", "wrk").put("throughput", 100000.0).put("errors", 0),
        new JsonObject().put("scenario", "replay-in-turn").put("tool", "wrk").put("throughput", 80000.0).put("errors", 0),
        new JsonObject().put("scenario", "bare-in-turn").put("tool", "wrk").put("throughput", 95000.0).put("errors", 0));
    List<ReportCommand.Ratio> ratios = ReportCommand.ratios(lines, new TreeMap<>());
    ReportCommand.Ratio inTurn = ratio(ratios, "replays ÷ bare Vert.x (wrk), medians of rounds in turn");
    assertEquals(70_000.0 / 95_000.0, inTurn.value()); // unrounded: the verdict is decided on it
    assertEquals("met", inTurn.verdict());
    assertEquals("70000.0 / 95000.0 (rounds [70000.0, 60000.0, 80000.0] / [90000.0, 100000.0, 95000.0])", inTurn.inputs());
    ReportCommand.Ratio single = ratio(ratios, "replays (wrk) ÷ bare Vert.x (wrk), single runs");
    assertEquals(0.5, single.value());
    assertEquals("", single.verdict(), "informative once rounds in turn ran");

    List<ReportCommand.Ratio> older = ReportCommand.ratios(lines.subList(0, 2), new TreeMap<>());
    assertEquals("NOT met", ratio(older, "replays (wrk) ÷ bare Vert.x (wrk), single runs").verdict(),
        "without rounds in turn the single runs carry the target");
    assertNull(ratio(older, "replays ÷ bare Vert.x (wrk), medians").value());
  }
  @Test
  @DisplayName("fresh-key target: the median of the fresh rounds ÷ the median of the naive-SQL rounds; the single runs then carry no target")
  void freshTargetFromRoundsInTurn() {
    List<JsonObject> lines = List.of(
        new JsonObject().put("scenario", "fresh").put("tool", "wrk").put("throughput", 3000.0).put("errors", 0),
        new JsonObject().put("scenario", "pg-naive").put("tool", "pgbench").put("throughput", 5000.0).put("errors", 0),
        new JsonObject().put("scenario", "fresh-in-turn").put("tool", "wrk").put("throughput", 4000.0).put("errors", 0),
        new JsonObject().put("scenario", "pg-naive-in-turn").put("tool", "pgbench").put("throughput", 3000.0).put("errors", 0),
        new JsonObject().put("scenario", "fresh-in-turn").put("tool", "wrk").put("throughput", 3500.0).put("errors", 0),
        new JsonObject().put("scenario", "pg-naive-in-turn").put("tool", "pgbench").put("throughput", 1000.0).put("errors", 0),
        new JsonObject().put("scenario", "fresh-in-turn").put("tool", "wrk").put("throughput", 5000.0).put("errors", 0),
        new JsonObject().put("scenario", "pg-naive-in-turn").put("tool", "pgbench").put("throughput", 2000.0).put("errors", 0));
    List<ReportCommand.Ratio> ratios = ReportCommand.ratios(lines, new TreeMap<>());
    ReportCommand.Ratio inTurn = ratio(ratios, "fresh /pay (wrk) ÷ pgbench naive SQL, medians of rounds in turn");
    assertEquals(4000.0 / 2000.0, inTurn.value());
    assertEquals(">= 2.0", inTurn.target());
    assertEquals("met", inTurn.verdict());
    assertEquals("4000.0 / 2000.0 (rounds [4000.0, 3500.0, 5000.0] / [3000.0, 1000.0, 2000.0])", inTurn.inputs());
    ReportCommand.Ratio single = ratio(ratios, "fresh /pay (wrk) ÷ pgbench naive SQL, single runs");
    assertEquals(0.6, single.value());
    assertEquals("", single.target(), "informative once rounds in turn ran");
    assertEquals("", single.verdict());

    List<ReportCommand.Ratio> older = ReportCommand.ratios(lines.subList(0, 2), new TreeMap<>());
    assertEquals("NOT met", ratio(older, "fresh /pay (wrk) ÷ pgbench naive SQL, single runs").verdict(),
        "without rounds in turn the single runs carry the target");
    assertNull(ratio(older, "fresh /pay (wrk) ÷ pgbench naive SQL, medians").value());
  }
}
