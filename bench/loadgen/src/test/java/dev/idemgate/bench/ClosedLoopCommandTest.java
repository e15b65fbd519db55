package dev.idemgate.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ClosedLoopCommandTest {
  @TempDir Path dir;

  private final Vertx server = Vertx.vertx();

  @AfterEach
  void stop() throws Exception {
    BenchTests.close(server);
  }

  @Test
  @DisplayName("closed loop over HTTP/1.1 and h2c: a new key per request, every measured answer counted, "
      + "throughput = answers in the window / window")
  void newKeysAndHonestCounts() throws Exception {
    Set<String> keys = ConcurrentHashMap.newKeySet();
    // Every answer 20 ms late, 4 requests in flight: at most 4 / 20 ms = 200 answers/s. Counting the
    // 2 s warm-up's answers would pass that bound; dividing by warm-up + window (3 s) would give at
    // most 67/s. The lower bound leaves room for a loaded machine.
    int port = serve(request -> {
      keys.add(request.getHeader("Idempotency-Key"));
      request.body().onSuccess(body -> server.setTimer(20, id -> request.response().setStatusCode(201).end("{}")));
    });

    Path results = dir.resolve("results.jsonl");
    for (List<String> protocol : List.of(List.of("--protocol", "http1", "--connections", "4"),
        List.of("--protocol", "h2c", "--connections", "2", "--streams", "2"))) {
      List<String> args = new ArrayList<>(List.of("--url", "http://127.0.0.1:" + port, "--concurrency", "4",
          "--duration", "1s", "--warmup", "2s", "--results", results.toString()));
      args.addAll(protocol);
      assertEquals(0, new CommandLine(new ClosedLoopCommand()).execute(args.toArray(String[]::new)));
    }

    List<String> lines = Files.readAllLines(results);
    assertEquals(2, lines.size());
    Set<String> protocols = new HashSet<>();
    for (String text : lines) {
      JsonObject line = new JsonObject(text);
      protocols.add(line.getString("protocol"));
      long requests = line.getLong("requests");
      assertEquals(0L, line.getLong("errors"), line.encode());
      assertEquals(requests, line.getJsonObject("statuses").getLong("201"), line.encode());
      double throughput = line.getDouble("throughput");
      assertTrue(throughput <= 205, "4 in flight x 20 ms each cannot answer more than 200/s: " + line);
      assertTrue(throughput >= 100, "the window's answers over the window, not over warm-up + window: " + line);
      assertEquals("closed", line.getString("loop"));
    }
    assertEquals(Set.of("http/1.1", "h2c"), protocols);
    // Warm-up and drained answers are sent too, so at least as many keys as counted answers, each new.
    long counted = lines.stream().mapToLong(l -> new JsonObject(l).getLong("requests")).sum();
    assertTrue(keys.size() >= counted, keys.size() + " distinct keys for " + counted + " counted answers");
  }

  @Test
  @DisplayName("a server answering 503 shows as errors, not as throughput of payments")
  void errorStatusesAreErrors() throws Exception {
    int port = serve(request -> request.body().onSuccess(body -> request.response().setStatusCode(503).end()));
    // A warm-up long enough for a cold JVM's first answers, so that the window sees some.
    JsonObject line = run(port, "--warmup", "1s", "--duration", "1s");
    assertTrue(line.getLong("requests") > 0, line.encode());
    assertEquals(line.getLong("requests"), line.getJsonObject("unexpected_statuses").getLong("503"), "every answer was a 503: " + line);
    // Those answered in the window, plus those sent in it and answered after it.
    assertTrue(line.getLong("errors") >= line.getLong("requests"), line.encode());
  }

  @Test
  @DisplayName("a request sent in the window that fails after it, before the drain deadline, is still an error")
  void failureAfterTheWindowIsCounted() throws Exception {
    // Each answer takes 800 ms and is a 503: the requests sent at the window's start are answered
    // after its 500 ms, well before the 10 s drain deadline.
    int port = serve(request -> request.body().onSuccess(body ->
        server.setTimer(800, id -> request.response().setStatusCode(503).end())));
    JsonObject line = run(port, "--warmup", "0s", "--duration", "500ms", "--drain", "10s");
    assertEquals(0L, line.getLong("requests"), "no answer came inside the window: " + line);
    assertEquals(4L, line.getLong("errors"), "the 4 requests in flight all failed after the window: " + line);
    assertEquals(4L, line.getJsonObject("failures").getLong("status_503_after_window"), line.encode());
  }

  private JsonObject run(int port, String... more) throws Exception {
    Path results = dir.resolve("run.jsonl");
    Files.deleteIfExists(results);
    List<String> args = new ArrayList<>(List.of("--url", "http://127.0.0.1:" + port, "--concurrency", "4",
        "--connections", "4", "--results", results.toString()));
    args.addAll(List.of(more));
    assertEquals(0, new CommandLine(new ClosedLoopCommand()).execute(args.toArray(String[]::new)));
    return new JsonObject(Files.readAllLines(results).get(0));
  }

  private int serve(Handler<HttpServerRequest> handler) throws Exception {
    return BenchTests.serve(server, handler);
  }
}
