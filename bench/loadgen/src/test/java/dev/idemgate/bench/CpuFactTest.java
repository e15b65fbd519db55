package dev.idemgate.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bench/run.sh's CPU facts, its own shell functions run by bash: cpu_fact over two snapshots made
 * up here (so the figures are known), and every_process over this machine's /proc.
 */
class CpuFactTest {
  @TempDir Path dir;

  /** The functions of bench/run.sh the facts are made of, loaded into a bash that then runs {@code body}. */
  private static String bash(String body) throws IOException, InterruptedException {
    String load = "source <(awk '/^every_process\\(\\) /,/^}/; /^cpu_snapshot\\(\\) /,/^}/; "
        + "/^cpu_fact\\(\\) /,/^}$/; /^zero_cost_gateway\\(\\) /,/^}$/' ../run.sh)\n"
        + "fact() { printf '%s=%s\\n' \"$1\" \"$2\"; }\n"
        // PostgreSQL and Redis counted as on this machine, wherever the test runs.
        + "pgrep() { return 0; }\n";
    Process bash = new ProcessBuilder("bash", "-c", load + body).redirectErrorStream(true).start();
    assertTrue(bash.waitFor(30, TimeUnit.SECONDS), "bash did not finish");
    String out = new String(bash.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    assertEquals(0, bash.exitValue(), out);
    return out;
  }

  /**
   * Ticks (100 a second) over 1,000 requests, so 1 tick is 10 µs per request. Before and after: the
   * machine busy 1,000 → 3,000 and idle 500 → 700; the gateway (pid 7) 100 → 300; PostgreSQL's
   * backends 11 (50 → 150), 12 (ended) and 13 (started, 40); Redis 10 → 20; perl 10 → 110, another
   * java 0 → 50, and a kworker started (5).
   */
  private static final String BEFORE =
      "1000 500 7:java:100,11:postgres:50,12:postgres:20,14:redis-server:10,5:perl:10,6:java:0,";
  private static final String AFTER =
      "3000 700 7:java:300,11:postgres:150,13:postgres:40,14:redis-server:20,5:perl:110,6:java:50,9:kworker:5,";

  @Test
  @DisplayName("cpu_fact splits the rest into wrk's own CPU (its .cpu file), the processes alive at the end by name, "
      + "largest first, and what is left unnamed")
  void restNamed() throws Exception {
    Path wrk = dir.resolve("fresh-wrk.txt");
    Files.writeString(wrk, "WRK_JSON {\"requests\":1000}\n");
    Files.writeString(dir.resolve("fresh-wrk.cpu"), "0.250 0.050\n");
    String fact = bash("CLK_TCK=100 GATEWAY_PID=7\ncpu_fact f '" + BEFORE + "' '" + AFTER + "' " + wrk + "\n");
    // rest: 2,000 busy − 200 gateway − 140 PostgreSQL − 10 Redis = 1,650 ticks; wrk 30 (0.3 s);
    // perl 100, java 50, kworker 5; unnamed 1,650 − 30 − 155 = 1,465.
    assertEquals("f=gateway 2000, postgres 1400, redis 100, rest (load generator and others) 16500 (of it the load "
        + "generator 300; alive at the end perl 1000, java 500, kworker 50; unnamed 14650), idle 2000 (us per request, "
        + "1000 requests)", fact);
  }

  @Test
  @DisplayName("cpu_fact without wrk's .cpu file gives the rest as one figure, as before")
  void restWithoutTheLoadGenerator() throws Exception {
    Path wrk = dir.resolve("fresh-wrk.txt");
    Files.writeString(wrk, "WRK_JSON {\"requests\":1000}\n");
    String fact = bash("CLK_TCK=100 GATEWAY_PID=7\ncpu_fact f '" + BEFORE + "' '" + AFTER + "' " + wrk + "\n");
    assertEquals("f=gateway 2000, postgres 1400, redis 100, rest (load generator and others) 16500, idle 2000 "
        + "(us per request, 1000 requests)", fact);
  }

  @Test
  @DisplayName("cpu_snapshot's busy and idle grow by every core's elapsed time less the stolen time, "
      + "short bursts between idle spells included")
  void busyByTheClock() throws Exception {
    // Threads that work for a few microseconds and then sleep, as an event loop does: /proc/stat's
    // user and system ticks are sampled at the timer tick and miss much of such work. Uptime and
    // steal are read just before each snapshot, so the two windows differ by a fork or two.
    AtomicBoolean stop = new AtomicBoolean();
    List<Thread> bursts = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      Thread burst = new Thread(() -> {
        while (!stop.get()) {
          long until = System.nanoTime() + 20_000;
          while (System.nanoTime() < until) {
            Thread.onSpinWait();
          }
          LockSupport.parkNanos(150_000);
        }
      });
      burst.start();
      bursts.add(burst);
    }
    String out;
    try {
      out = bash("""
          clock() { read -r up _ < /proc/uptime; awk -v up="$up" '/^cpu / { print up, $9 + 0 }' /proc/stat; }
          CLK_TCK=100
          c1=$(clock); s1=$(cpu_snapshot)
          sleep 3
          c2=$(clock); s2=$(cpu_snapshot)
          echo "$(nproc) $c1 ${s1%% *} $(echo "$s1" | cut -d' ' -f2) $c2 ${s2%% *} $(echo "$s2" | cut -d' ' -f2)"
          """);
    } finally {
      stop.set(true);
      for (Thread t : bursts) {
        t.join();
      }
    }
    String[] f = out.split(" ");
    double cores = Double.parseDouble(f[0]);
    double elapsedTicks = (Double.parseDouble(f[5]) - Double.parseDouble(f[1])) * 100 * cores;
    double steal = Double.parseDouble(f[6]) - Double.parseDouble(f[2]);
    double busy = Double.parseDouble(f[7]) - Double.parseDouble(f[3]);
    double idle = Double.parseDouble(f[8]) - Double.parseDouble(f[4]);
    assertTrue(busy > 0 && idle >= 0, out);
    // /proc/uptime has 10 ms steps and the forks between a clock read and its snapshot take a few ms,
    // tens on a loaded machine: 6 % of the window (180 ms a core), at least 3 ticks per core. Sampled
    // ticks came out about 10 % short with these threads.
    assertEquals(elapsedTicks, busy + idle + steal, Math.max(3 * cores, 0.06 * elapsedTicks), out);
  }

  @Test
  @DisplayName("zero_cost_gateway adds up what PostgreSQL, Redis and the rest used in each round in turn, "
      + "and the ratio a gateway costing no CPU would reach with it")
  void zeroCostGateway() throws Exception {
    Path meta = dir.resolve("meta");
    Files.writeString(meta, """
        fresh_in_turn_cpu_per_request_round1=gateway 169, postgres 174, redis 29, rest (load generator and others) 47 \
        (of it the load generator 31; alive at the end kworker 7; unnamed 9), idle 117 (us per request, 36974 requests)
        fresh_cpu_per_request=gateway 191, postgres 900, redis 26, rest (load generator and others) 36, idle 105
        fresh_in_turn_cpu_per_request_round2=gateway 192, postgres 300, redis 34, rest (load generator and others) 66, \
        idle 144 (us per request, 31769 requests)
        """);
    // Round 1: 174 + 29 + 47 = 250 us, 2 cores / (250 us x 4,000/s) = 2.00; round 2: 400 us, 1.25. The
    // single fresh run's line is no round.
    assertEquals("PostgreSQL, Redis and the rest used 250, 400 us per new payment in the rounds in turn (the budget "
        + "for everything: 250 us); a gateway costing no CPU would reach at most 2.00x, 1.25x the naive SQL (4000/s), "
        + "that work staying the same per payment", bash("zero_cost_gateway " + meta + " 2 4000\n"));
    // A round whose rest is negative (steal: the processes' own times ran over the busy time by the
    // clock) still counts, with its sign: 408 + 56 - 161 = 303 us.
    Files.writeString(meta, "fresh_in_turn_cpu_per_request_round2=gateway 356, postgres 408, redis 56, "
        + "rest (load generator and others) -161 (of it the load generator 52; alive at the end kworker 10; unnamed -235), "
        + "idle 433 (us per request, 11340 requests)\n");
    assertEquals("PostgreSQL, Redis and the rest used 303 us per new payment in the rounds in turn (the budget for "
        + "everything: 250 us); a gateway costing no CPU would reach at most 1.65x the naive SQL (4000/s), that work "
        + "staying the same per payment", bash("zero_cost_gateway " + meta + " 2 4000\n"));
    Files.writeString(meta, "fresh_in_turn_cpu_per_request_round1=gateway 169, postgres n/a (not local), redis 29, "
        + "rest (load generator and others) 47, idle 117 (us per request, 36974 requests)\n");
    assertEquals("n/a: no rounds in turn with PostgreSQL and Redis on this machine",
        bash("zero_cost_gateway " + meta + " 2 4000\n"));
  }

  @Test
  @DisplayName("every_process lists this JVM by its pid and name, with its ticks")
  void everyProcessListsThisJvm() throws Exception {
    String list = bash("every_process\n");
    String mine = ProcessHandle.current().pid() + ":java:";
    int at = ("," + list).indexOf("," + mine);
    assertTrue(at >= 0, list);
    String ticks = list.substring(at + mine.length(), list.indexOf(',', at));
    assertTrue(Long.parseLong(ticks) > 0, ticks);
  }
}
