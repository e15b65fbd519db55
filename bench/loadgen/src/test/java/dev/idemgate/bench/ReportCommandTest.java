package dev.idemgate.bench;

import static dev.idemgate.bench.BenchTests.ratio;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ReportCommandTest {
  @TempDir Path dir;

  @Test
  @DisplayName("a verdict is decided on the unrounded ratio, and the storm's target is strictly lower")
  void verdictIsNotRounded() {
    assertEquals("NOT met", new ReportCommand.Ratio("replays", 0.5991, ">= 0.6", "").verdict());
    assertEquals("NOT met", new ReportCommand.Ratio("replays", 0.59996, ">= 0.6", "").verdict());
    assertEquals("met", new ReportCommand.Ratio("replays", 0.6, ">= 0.6", "").verdict());
    assertEquals("NOT met", new ReportCommand.Ratio("storm", 1.004, "< 1.0", "").verdict());
    assertEquals("NOT met", new ReportCommand.Ratio("storm", 1.0, "< 1.0", "").verdict(), "equal is not lower");
    assertEquals("met", new ReportCommand.Ratio("storm", 0.9999, "< 1.0", "").verdict());
    assertEquals("", new ReportCommand.Ratio("informative", 3.0, "", "").verdict());
  }

  @Test
  @DisplayName("the Markdown shows as many digits as the verdict needs: a missed 0.5996 never reads 0.600")
  void shownDigitsAgreeWithTheVerdict() {
    assertEquals("0.5996", new ReportCommand.Ratio("r", 0.5996, ">= 0.6", "").shown());
    assertEquals("0.59996", new ReportCommand.Ratio("r", 0.59996, ">= 0.6", "").shown());
    assertEquals("0.612", new ReportCommand.Ratio("r", 0.6123, ">= 0.6", "").shown());
    assertEquals("1.0004", new ReportCommand.Ratio("r", 1.0004, "<= 1.0", "").shown());
    assertEquals("3.000", new ReportCommand.Ratio("r", 3.0, "", "").shown());
    assertEquals("n/a", new ReportCommand.Ratio("r", null, ">= 0.6", "n/a").shown());
  }

  @Test
  @DisplayName("a target ratio over a row with errors is NOT met, whatever its value, and says which row")
  void erroredInputIsNotMet() {
    List<JsonObject> lines = List.of(
        row("fresh", "wrk", 3000.0, 5),
        row("pg-naive", "pgbench", 1000.0, 0));
    ReportCommand.Ratio fresh = ratio(ReportCommand.ratios(lines, new TreeMap<>()), "fresh /pay (wrk) ÷ pgbench naive SQL");
    assertEquals(3.0, fresh.value());
    assertTrue(fresh.verdict().startsWith("NOT met: fresh (wrk, gateway, 32 conn.) had 5 errors"), fresh.verdict());
    assertEquals("met", ratio(ReportCommand.ratios(List.of(row("fresh", "wrk", 3000.0, 0), row("pg-naive", "pgbench", 1000.0, 0)),
        new TreeMap<>()), "fresh /pay (wrk) ÷ pgbench naive SQL").verdict(), "the same figures without errors");
  }

  @Test
  @DisplayName("the replay target over rounds in turn is NOT met when any round had errors")
  void erroredRoundIsNotMet() {
    List<JsonObject> lines = List.of(
        row("replay-in-turn", "wrk", 70000.0, 0), row("bare-in-turn", "wrk", 90000.0, 0),
        row("replay-in-turn", "wrk", 71000.0, 12), row("bare-in-turn", "wrk", 91000.0, 0));
    ReportCommand.Ratio inTurn = ratio(ReportCommand.ratios(lines, new TreeMap<>()), "replays ÷ bare Vert.x (wrk), medians");
    assertTrue(inTurn.verdict().startsWith("NOT met") && inTurn.verdict().contains("12 errors"), inTurn.verdict());
  }

  @Test
  @DisplayName("the fresh-key target over rounds in turn is NOT met when a round of either side had errors, and names it")
  void erroredFreshOrNaiveRoundIsNotMet() {
    List<JsonObject> clean = List.of(
        row("fresh-in-turn", "wrk", 6000.0, 0), row("pg-naive-in-turn", "pgbench", 2000.0, 0),
        row("fresh-in-turn", "wrk", 6100.0, 0), row("pg-naive-in-turn", "pgbench", 2100.0, 0),
        row("fresh-in-turn", "wrk", 6200.0, 0), row("pg-naive-in-turn", "pgbench", 2200.0, 0));
    String name = "fresh /pay (wrk) ÷ pgbench naive SQL, medians of rounds in turn";
    assertEquals("met", ratio(ReportCommand.ratios(clean, new TreeMap<>()), name).verdict());
    List<JsonObject> freshErrors = new java.util.ArrayList<>(clean);
    freshErrors.set(2, row("fresh-in-turn", "wrk", 6100.0, 7));
    String verdict = ratio(ReportCommand.ratios(freshErrors, new TreeMap<>()), name).verdict();
    assertEquals("NOT met: fresh-in-turn (wrk, gateway, 32 conn.) had 7 errors", verdict);
    List<JsonObject> naiveErrors = new java.util.ArrayList<>(clean);
    naiveErrors.set(5, row("pg-naive-in-turn", "pgbench", 2200.0, 3));
    verdict = ratio(ReportCommand.ratios(naiveErrors, new TreeMap<>()), name).verdict();
    assertEquals("NOT met: pg-naive-in-turn (pgbench, gateway, 32 conn.) had 3 errors", verdict,
        "a round that is not the median spoils the target too");
    JsonObject unread = row("pg-naive-in-turn", "pgbench", 2000.0, 0);
    unread.remove("errors");
    List<JsonObject> naiveUnread = new java.util.ArrayList<>(clean);
    naiveUnread.set(1, unread);
    assertTrue(ratio(ReportCommand.ratios(naiveUnread, new TreeMap<>()), name).verdict().contains("does not report its errors"));
  }

  @Test
  @DisplayName("zero errors in every row: NOT met names the rows; a row that does not report errors is not taken for zero")
  void zeroErrorsCheck() {
    assertEquals("met", ReportCommand.zeroErrors(List.of(row("fresh", "wrk", 1.0, 0), row("replay", "wrk", 1.0, 0))).verdict());
    ReportCommand.Check errored = ReportCommand.zeroErrors(List.of(row("fresh", "wrk", 1.0, 0), row("storm", "loadgen-storm", 1.0, 3)));
    assertEquals("NOT met", errored.verdict());
    assertTrue(errored.detail().contains("storm (loadgen-storm, gateway, 32 conn.): 3"), errored.detail());
    JsonObject unread = row("redis-gate", "redis-benchmark", 1.0, 0);
    unread.remove("errors");
    assertEquals("unknown", ReportCommand.zeroErrors(List.of(row("fresh", "wrk", 1.0, 0), unread)).verdict());
  }

  @Test
  @DisplayName("steal: the runs in which the hypervisor took 2% of the CPU or more are named, the most first; none is met; "
      + "a run with no steal figures gets no check")
  void stealCheck() {
    TreeMap<String, String> facts = new TreeMap<>();
    facts.put("during_fresh-wrk", "CPU steal 8.2%; gateway GC: 16 young (141 ms); PostgreSQL: 0 checkpoints");
    facts.put("during_pg-naive-in-turn-round3-pgbench", "CPU steal 6.9%; PostgreSQL: 0 checkpoints");
    facts.put("during_replay-wrk", "CPU steal 1.9%; gateway GC: 25 young (61 ms)");
    facts.put("cpus", "2");
    ReportCommand.Check disturbed = ReportCommand.stealCheck(facts).orElseThrow();
    assertEquals("NOT met", disturbed.verdict());
    assertEquals("slowed by the hypervisor, figures understated: fresh-wrk 8.2%, pg-naive-in-turn-round3-pgbench 6.9%",
        disturbed.detail());
    facts.put("during_fresh-wrk", "CPU steal 0.0%; gateway GC: 16 young (141 ms)");
    facts.remove("during_pg-naive-in-turn-round3-pgbench");
    ReportCommand.Check quiet = ReportCommand.stealCheck(facts).orElseThrow();
    assertEquals("met", quiet.verdict());
    assertEquals("steal at most 1.9% in 2 runs", quiet.detail());
    assertTrue(ReportCommand.stealCheck(new TreeMap<>(java.util.Map.of("cpus", "2"))).isEmpty());
  }

  @Test
  @DisplayName("storm: its ratio is strict and carries the 409 sample size; its check says when the ledger was not read")
  void stormRatioAndCheck() {
    JsonObject storm = row("storm", "loadgen-storm", 100.0, 0).put("rounds", 3).put("rounds_passed", 3)
        .put("ledger_check", "NOT CHECKED: no --pg-url").put("conflict_409", 91).put("conflict_p99_ms", 20.0)
        .put("fresh_burst_201", 3000).put("fresh_burst_p99_ms", 20.0);
    ReportCommand.Ratio ratio = ratio(ReportCommand.ratios(List.of(storm), new TreeMap<>()), "storm 409 p99 ÷ new-payment p99");
    assertEquals("NOT met", ratio.verdict(), "equal p99s are not lower");
    assertTrue(ratio.inputs().contains("91 409s"), ratio.inputs());
    ReportCommand.Check check = ReportCommand.stormCheck(storm);
    assertTrue(check.verdict().contains("ledger NOT CHECKED"), check.verdict());
    assertEquals("met", ReportCommand.stormCheck(storm.copy().put("ledger_check", "rows in idemgate.payments")).verdict());
    assertEquals("NOT met", ReportCommand.stormCheck(storm.copy().put("rounds_passed", 2)).verdict());
  }

  @Test
  @DisplayName("a run with failed steps opens both reports with INCOMPLETE, and the JSON's verdicts are the Markdown's")
  void incompleteRunAndAgreeingReports() throws Exception {
    Path results = dir.resolve("results.jsonl");
    Files.writeString(results, String.join("\n", row("fresh", "wrk", 2999.0, 0).encode(),
        row("pg-naive", "pgbench", 1500.0, 0).encode(), row("replay", "wrk", 5996.0, 0).encode(),
        row("bare", "wrk", 10000.0, 0).encode()) + "\n");
    Path meta = dir.resolve("meta.properties");
    // One line per failed step, as the runner may write them: every one is named, not only the last.
    Files.writeString(meta, "timestamp=20261130T000000Z\nfailed_steps=wrk fresh-h2c\nfailed_steps=pgbench pg-commit\n");
    JsonObject json = report(results, meta);
    String md = Files.readString(dir.resolve("report.md"), StandardCharsets.UTF_8);

    assertEquals(false, json.getBoolean("complete"));
    assertEquals("complete", json.fieldNames().iterator().next(), "the first thing a reader of the JSON sees");
    assertTrue(json.getString("incomplete").contains("wrk fresh-h2c, pgbench pg-commit"), json.encode());
    List<String> mdLines = md.lines().filter(l -> !l.isBlank()).toList();
    assertTrue(mdLines.get(1).contains("INCOMPLETE RUN") && mdLines.get(1).contains("wrk fresh-h2c, pgbench pg-commit"),
        "the banner right under the title: " + mdLines.get(1));

    JsonArray ratios = json.getJsonArray("ratios");
    for (int i = 0; i < ratios.size(); i++) {
      JsonObject r = ratios.getJsonObject(i);
      String mdRow = md.lines().filter(l -> l.startsWith("| " + r.getString("name") + " |")).findFirst().orElseThrow();
      assertEquals(r.getString("verdict"), mdRow.split(" \\| ")[3].trim(), "same verdict in both: " + mdRow);
    }
    JsonObject replays = ratios.stream().map(JsonObject.class::cast)
        .filter(r -> r.getString("name").startsWith("replays (wrk) ÷ bare")).findFirst().orElseThrow();
    assertEquals(0.5996, replays.getDouble("value"), 1e-12);
    assertEquals("NOT met", replays.getString("verdict"));
    assertTrue(md.contains("| 0.5996 | >= 0.6 | NOT met |"), "not 0.600 for a missed 0.6: "
        + md.lines().filter(l -> l.contains("replays (wrk)")).collect(Collectors.joining()));
    assertEquals("zero errors in every row", json.getJsonArray("checks").getJsonObject(0).getString("name"));

    Files.writeString(meta, "timestamp=20261130T000000Z\nfailed_steps=\n");
    JsonObject complete = report(results, meta);
    assertEquals(true, complete.getBoolean("complete"));
    assertFalse(Files.readString(dir.resolve("report.md")).contains("INCOMPLETE"));
  }

  private JsonObject report(Path results, Path meta) throws Exception {
    Path json = dir.resolve("report.json");
    assertEquals(0, new CommandLine(new ReportCommand()).execute("--results", results.toString(), "--meta", meta.toString(),
        "--markdown", dir.resolve("report.md").toString(), "--json", json.toString()));
    return new JsonObject(Files.readString(json));
  }

  private static JsonObject row(String scenario, String tool, double throughput, long errors) {
    return new JsonObject().put("scenario", scenario).put("tool", tool).put("target", "gateway").put("connections", 32)
        .put("throughput", throughput).put("errors", errors);
  }
}
