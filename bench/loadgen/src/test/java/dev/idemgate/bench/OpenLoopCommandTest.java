package dev.idemgate.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class OpenLoopCommandTest {
  @TempDir Path dir;

  private final Vertx server = Vertx.vertx();

  @AfterEach
  void stop() throws Exception {
    BenchTests.close(server);
  }

  @Test
  @DisplayName("a server that stalls 1 s shows the stall in p99: latency runs from the intended send time (no coordinated omission)")
  void stallShowsInP99() throws Exception {
    AtomicLong seen = new AtomicLong();
    // The 100th request (about 0.7 s into the measured window at 100/s after a 0.3 s warm-up)
    // stalls the server's only event loop for a second. Over one connection the requests due
    // meanwhile wait in the client: measured from when each actually left, only the stalled one
    // would be slow (p99 of 300 ~ 1 ms); measured from when each was due, a second's worth of them
    // waited up to a second.
    int port = serve(request -> {
      if (seen.incrementAndGet() == 100) {
        sleep(1_000);
      }
      request.body().onSuccess(body -> request.response().setStatusCode(201).end("{}"));
    });
    JsonObject line = run(port, "--rate", "100", "--connections", "1", "--warmup", "300ms", "--duration", "3s");
    assertTrue(line.getDouble("p99_ms") >= 900, "the stall is in the p99: " + line);
    assertTrue(line.getDouble("max_ms") >= 1000, line.encode());
    assertEquals(0L, line.getLong("errors"), line.encode());
    // The generator itself never waited for the server (its send lag is not the stall).
    assertTrue(line.getDouble("generator_lag_max_ms") < 500, "the server stalled, not the generator: " + line);
  }

  @Test
  @DisplayName("mixed mode: a 409 is an error except on a key sent twice (either attempt), and duplicates are counted in the measured window only")
  void mixedConflictsOnlyOnDuplicates() throws Exception {
    int port = serve(request -> request.body().onSuccess(body -> request.response().setStatusCode(409).end("{}")));
    JsonObject line = run(port, "--mode", "mixed", "--duplicate-percent", "10", "--rate", "200", "--warmup", "500ms",
        "--duration", "1s");
    long requests = line.getLong("requests");
    long duplicates = line.getLong("duplicates_sent");
    assertEquals(200, requests, 5, line.encode());
    assertTrue(duplicates > 0, line.encode());
    // Every answer was a 409: right for the duplicates among the recorded requests and for the first
    // attempts they retried (a retry may overtake its first attempt), wrong for every other key.
    long errors = line.getLong("errors");
    assertTrue(errors <= requests - duplicates, "no 409 on a duplicate is an error: " + line);
    assertTrue(errors >= requests - 2 * duplicates, "at most one first attempt excused per duplicate: " + line);
    assertTrue(errors > 0, "a key sent once has no other attempt to conflict with: " + line);
  }

  @Test
  @DisplayName("which answers are right for a request: 409 only for a key sent twice, 402 only for a decline key, 201 otherwise")
  void expectedAnswers() {
    assertTrue(OpenLoopCommand.expected(201, false, false));
    assertTrue(OpenLoopCommand.expected(201, false, true), "a duplicate replayed");
    assertFalse(OpenLoopCommand.expected(409, false, false), "a new key has no attempt in flight");
    assertTrue(OpenLoopCommand.expected(409, true, true));
    assertTrue(OpenLoopCommand.expected(402, true, false));
    assertTrue(OpenLoopCommand.expected(402, true, true));
    assertFalse(OpenLoopCommand.expected(402, false, false), "tok_visa is not declined");
    assertFalse(OpenLoopCommand.expected(201, true, false), "tok_decline must not be paid");
    assertFalse(OpenLoopCommand.expected(503, false, true));
  }

  private JsonObject run(int port, String... more) throws Exception {
    Path results = dir.resolve("open.jsonl");
    List<String> args = new ArrayList<>(List.of("--url", "http://127.0.0.1:" + port, "--results", results.toString()));
    args.addAll(List.of(more));
    assertEquals(0, new CommandLine(new OpenLoopCommand()).execute(args.toArray(String[]::new)));
    return new JsonObject(Files.readAllLines(results).get(0));
  }

  private int serve(Handler<HttpServerRequest> handler) throws Exception {
    return BenchTests.serve(server, handler);
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
