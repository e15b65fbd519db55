package dev.idemgate.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The storm against a stub gateway: one event loop that creates a key's payment 50 ms after its
 * first request, answers 409 meanwhile and replays after, and a charge log whose request count
 * the test chooses.
 */
class StormCommandTest {
  @TempDir Path dir;

  private final Vertx server = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1));
  /** What the stub's charge log says of every key's provider requests. */
  private long providerRequests = 1;
  /** What the stub answers the fresh bursts' new payments. */
  private int freshStatus = 201;

  @AfterEach
  void stop() throws Exception {
    BenchTests.close(server);
  }

  @Test
  @DisplayName("one payment per key everywhere: every round passes, and the unread ledger says NOT CHECKED")
  void onePaymentPerKey() throws Exception {
    Result r = storm(null);
    assertEquals(0, r.exit, r.line.encode());
    assertEquals(2, r.line.getInteger("rounds_passed"));
    assertTrue(r.line.getString("ledger_check").startsWith("NOT CHECKED"), r.line.encode());
    assertEquals("NOT CHECKED", r.line.getJsonArray("round_log").getJsonObject(0).getValue("ledger_rows"));
    assertEquals(0L, r.line.getLong("errors"), r.line.encode());
    assertTrue(r.line.getLong("conflict_409") > 0, "the stub answers 409 while the first request is in flight");
  }

  @Test
  @DisplayName("a second charge request at the acquirer fails the storm, though the deduplicating log lists one charge")
  void secondChargeRequestFails() throws Exception {
    providerRequests = 2;
    Result r = storm(null);
    assertEquals(1, r.exit, "non-zero exit: " + r.line.encode());
    assertEquals(0, r.line.getInteger("rounds_passed"));
    JsonObject round = r.line.getJsonArray("round_log").getJsonObject(0);
    assertEquals(1, round.getInteger("charges"));
    assertEquals(false, round.getBoolean("passed"));
    assertTrue(round.getJsonArray("failed_checks").encode().contains("2 charge requests"), round.encode());
  }

  @Test
  @DisplayName("a second ledger row for the key fails the storm, though the charge log is clean")
  void secondLedgerRowFails() throws Exception {
    List<String> asked = new ArrayList<>();
    Result r = storm(new Ledger() {
      @Override
      public Future<Long> rows(String merchant, String key) {
        asked.add(merchant + "/" + key);
        return Future.succeededFuture(2L);
      }

      @Override
      public Future<Void> close() {
        return Future.succeededFuture();
      }
    });
    assertEquals(1, r.exit, r.line.encode());
    assertEquals(0, r.line.getInteger("rounds_passed"));
    assertEquals("rows in idemgate.payments", r.line.getString("ledger_check"));
    assertEquals(List.of("demo/storm-t-0", "demo/storm-t-1"), asked, "each measured round's key, under its merchant");
  }

  @Test
  @DisplayName("fresh-burst answers that are not 201 are errors, and are not in the p99 the 409s are compared with")
  void freshBurstFailuresAreErrors() throws Exception {
    freshStatus = 503;
    Result r = storm(null);
    assertEquals(0, r.exit, "the rounds themselves pass: " + r.line.encode());
    assertEquals(2L * 20, r.line.getLong("fresh_burst_errors"), r.line.encode());
    assertEquals(2L * 20, r.line.getLong("errors"), "the row's errors include the fresh bursts': " + r.line.encode());
    assertEquals(0L, r.line.getLong("fresh_burst_201"));
    assertNull(r.line.getValue("fresh_burst_p99_ms"), "no new payment, no p99 to compare with");
    assertEquals(40L, r.line.getJsonObject("fresh_burst_statuses").getLong("503"));
  }

  @Test
  @DisplayName("the ledger's provider key is the gateway's: hex(SHA-256(merchant:key))")
  void providerKey() {
    // printf 'demo:k' | sha256sum
    assertEquals("2c6348a52e00f0cacbddb89afebf8ed0f23ab8c753d4759732847c5a0cb5ff10", PgLedger.providerKey("demo", "k"));
  }

  private record Result(int exit, JsonObject line) {}

  private Result storm(Ledger ledger) throws Exception {
    int port = serve();
    Path results = dir.resolve("storm.jsonl");
    StormCommand storm = new StormCommand();
    if (ledger != null) {
      storm.ledgers = vertx -> ledger;
    }
    int exit = new CommandLine(storm).execute("--url", "http://127.0.0.1:" + port, "--admin-url", "http://127.0.0.1:" + port,
        "--admin-token", "t", "--concurrency", "20", "--rounds", "2", "--key-prefix", "storm-t",
        "--results", results.toString());
    return new Result(exit, new JsonObject(Files.readAllLines(results).get(0)));
  }

  /** The stub: payments on /pay, the charge log on /admin/simulator/charges, a 404 for the warm-up GET. */
  private int serve() throws Exception {
    Map<String, String> done = new HashMap<>(); // key -> payment id, once created
    Map<String, Boolean> inFlight = new HashMap<>();
    return BenchTests.serve(server, request -> {
      if (request.path().equals("/admin/simulator/charges")) {
        request.response().putHeader("Content-Type", "application/json").end(new JsonObject()
            .put("requests", providerRequests)
            .put("charges", new JsonArray().add(new JsonObject().put("id", "ch_1"))).encode());
      } else if (request.method() == HttpMethod.GET) {
        request.response().setStatusCode(404).end();
      } else {
        request.body().onSuccess(body -> pay(request, done, inFlight));
      }
    });
  }

  private void pay(HttpServerRequest request, Map<String, String> done, Map<String, Boolean> inFlight) {
    String key = request.getHeader("Idempotency-Key");
    long sequence = Long.parseLong(key.substring(key.lastIndexOf('-') + 1));
    if (sequence >= 1_000_000L) { // a fresh burst's new payment
      request.response().setStatusCode(freshStatus).putHeader("Location", "/v1/payments/pay_" + key).end("{}");
    } else if (done.containsKey(key)) {
      request.response().setStatusCode(201).putHeader("Idempotent-Replayed", "true")
          .putHeader("Location", done.get(key)).end("{}");
    } else if (inFlight.containsKey(key)) {
      request.response().setStatusCode(409).end("{}");
    } else {
      inFlight.put(key, true);
      server.setTimer(50, id -> {
        done.put(key, "/v1/payments/pay_" + key);
        request.response().setStatusCode(201).putHeader("Location", done.get(key)).end("{}");
      });
    }
  }
}
