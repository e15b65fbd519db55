package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assumptions.assumeThat;

import dev.idemgate.config.ConfigLoader;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.lang.management.ManagementFactory;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The admin view's client lists (GET /admin/anomalies), on a judge fed directly. */
class AnomalyViewTest {
  private static AnomalyMonitor monitor() {
    return new AnomalyMonitor(ConfigLoader.load(Optional.empty(), Map.of()), new SimpleMeterRegistry(),
        TwinRateJudge.Settings.defaults());
  }

  /** The lists as the view made them before it was bounded: from every standing, sorted. */
  private static JsonObject fromEveryStanding(AnomalyMonitor monitor, String merchant, int limit) {
    JsonArray flagged = new JsonArray();
    JsonArray clients = new JsonArray();
    for (TwinRateJudge.ClientStanding s : monitor.judge().standings(merchant)) {
      if (s.flagged()) {
        flagged.add(s.client());
      }
      if (clients.size() < limit) {
        clients.add(s.client());
      }
    }
    return new JsonObject().put("flagged", flagged).put("clients", clients);
  }

  @Test
  @DisplayName("the view shows every flagged client and the top clients in the order of the full sort, ties included")
  void sameListsAsSortingEveryClient() {
    AnomalyMonitor monitor = monitor();
    SplittableRandom random = new SplittableRandom(7);
    for (int i = 0; i < 60_000; i++) {
      String merchant = "m" + random.nextInt(4);
      int client = random.nextInt(300);
      // A few sloppy clients (flagged), some with a twin now and then (evidence above 0), most quiet (ties at 0).
      double rate = client < 6 ? 0.4 : client < 60 ? 0.03 : 0;
      monitor.judge().record(merchant, "c" + client, random.nextDouble() < rate, i);
    }
    assertThat(monitor.judge().flaggedCount()).isGreaterThan(4);
    for (String merchant : new String[] {null, "m1", "unknown"}) {
      for (int limit : new int[] {1, 3, 50, 200, 2_000}) {
        JsonObject view = monitor.view(merchant, limit);
        JsonObject expected = fromEveryStanding(monitor, merchant, limit);
        assertThat(clients(view.getJsonArray("flagged_clients"))).as("flagged, %s, %d", merchant, limit)
            .isEqualTo(expected.getJsonArray("flagged"));
        assertThat(clients(view.getJsonArray("clients"))).as("clients, %s, %d", merchant, limit)
            .isEqualTo(expected.getJsonArray("clients"));
      }
    }
    JsonObject one = monitor.view("m1", 200).getJsonArray("clients").getJsonObject(0);
    TwinRateJudge.ClientStanding top = monitor.judge().standings("m1").get(0);
    assertThat(one.getString("client")).isEqualTo(top.client());
    assertThat(one.getLong("payments")).isEqualTo(top.payments());
    assertThat(one.getBoolean("flagged")).isTrue();
  }

  @Test
  @DisplayName("a view of 100 000 clients costs what its rows need, not a standing and a sort of every client")
  void viewIsBoundedByItsRows() {
    assumeThat(ManagementFactory.getThreadMXBean()).isInstanceOf(com.sun.management.ThreadMXBean.class);
    com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    assumeThat(threads.isThreadAllocatedMemorySupported() && threads.isThreadAllocatedMemoryEnabled()).isTrue();
    AnomalyMonitor monitor = monitor();
    for (int merchant = 0; merchant < 100; merchant++) {
      for (int client = 0; client < 1_000; client++) {
        monitor.judge().record("m" + merchant, "c" + client, false, client);
      }
    }
    assertThat(monitor.judge().standings(null)).hasSize(100_000);
    monitor.view(null, 50); // warm up
    long before = threads.getCurrentThreadAllocatedBytes();
    JsonObject view = monitor.view(null, 50);
    long allocated = threads.getCurrentThreadAllocatedBytes() - before;
    System.out.printf("one admin view of 100000 clients allocated %d bytes%n", allocated);
    assertThat(view.getJsonArray("clients")).hasSize(50);
    // Sorting them all takes at least an array of 100 000 references (400 kB) and 100 000 standings
    // (several MB); the 50 rows shown need a few kB.
    assertThat(allocated).as("bytes allocated by one view").isLessThan(256 * 1024);
  }

  private static JsonArray clients(JsonArray standings) {
    JsonArray names = new JsonArray();
    standings.forEach(s -> names.add(((JsonObject) s).getString("client")));
    return names;
  }
}
