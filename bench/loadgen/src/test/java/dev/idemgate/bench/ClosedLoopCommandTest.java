package dev.idemgate.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ClosedLoopCommandTest {

  @Test
  @DisplayName("closed loop over HTTP/1.1 and h2c: a new key per request, every measured answer counted, throughput = answers / duration")
  void newKeysAndHonestCounts(@TempDir Path dir) throws Exception {
    int port;
    try (ServerSocket socket = new ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    Set<String> keys = ConcurrentHashMap.newKeySet();
    Vertx server = Vertx.vertx();
    try {
      server.createHttpServer().requestHandler(request -> {
        keys.add(request.getHeader("Idempotency-Key"));
        request.body().onSuccess(body -> request.response().setStatusCode(201).end("{}"));
      }).listen(port, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);

      Path results = dir.resolve("results.jsonl");
      for (List<String> protocol : List.of(List.of("--protocol", "http1", "--connections", "4"),
          List.of("--protocol", "h2c", "--connections", "2", "--streams", "2"))) {
        List<String> args = new ArrayList<>(List.of("--url", "http://127.0.0.1:" + port, "--concurrency", "4",
            "--duration", "1s", "--warmup", "300ms", "--results", results.toString()));
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
        assertTrue(requests > 10, "some requests answered in the measured second: " + line);
        assertEquals(0L, line.getLong("errors"), line.encode());
        assertEquals(requests, line.getJsonObject("statuses").getLong("201"), line.encode());
        assertEquals((double) requests, line.getDouble("throughput"), 0.1, "one measured second: throughput = answers");
        assertEquals("closed", line.getString("loop"));
      }
      assertEquals(Set.of("http/1.1", "h2c"), protocols);
      // Warm-up and drained answers are sent too, so at least as many keys as counted answers, each new.
      long counted = lines.stream().mapToLong(l -> new JsonObject(l).getLong("requests")).sum();
      assertTrue(keys.size() >= counted, keys.size() + " distinct keys for " + counted + " counted answers");
    } finally {
      server.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }
}
