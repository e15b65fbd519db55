package dev.idemgate.bench;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * A retry storm: N concurrent requests on one key, round after round. Exactly one request per round
 * may create the payment (201); the others get 409 while it is in flight, or its replay (201 with
 * Idempotent-Replayed) once it is done. After each round the key must show, everywhere it can be
 * seen, exactly one payment: one charge and one charge request in the simulator's log for its
 * provider key, one row in the gateway's ledger, one payment id in every 201. Anything else fails
 * the round, and a failed round fails the command.
 *
 * <p>The charge log alone cannot see a double charge: the in-process simulator deduplicates, so a
 * second charge request with the same provider key gets the first charge back and the log still
 * lists one charge (only its {@code requests} count shows the second request); and a payment
 * charged under another provider key (the one a reused key gets) is in another log altogether. The
 * ledger sees both, which is why it is read when {@code --pg-url} is given, and why the result says
 * "NOT CHECKED" when it is not.
 */
@Command(name = "storm", mixinStandardHelpOptions = true,
    description = "Concurrent requests on one key per round; counts 201 vs 409 and checks exactly one payment per key.")
final class StormCommand implements Callable<Integer> {
  @Mixin TargetOptions target;

  @Option(names = "--concurrency", defaultValue = "1000", description = "Requests per round, all on one key. Default: ${DEFAULT-VALUE}.")
  int concurrency;

  @Option(names = "--rounds", defaultValue = "3", description = "Rounds, a new key each. Default: ${DEFAULT-VALUE}.")
  int rounds;

  @Option(names = "--admin-url", defaultValue = "http://127.0.0.1:9090", description = "Management port base URL. Default: ${DEFAULT-VALUE}.")
  URI adminUrl;

  @Option(names = "--admin-token", description = "Bearer token of the admin endpoints (default: $IDEMGATE_ADMIN_TOKEN).")
  String adminToken;

  @Option(names = "--merchant", defaultValue = "demo", description = "Merchant id of the API key. Default: ${DEFAULT-VALUE}.")
  String merchant;

  @Option(names = "--pg-url", description = "The gateway's PostgreSQL (postgresql://user[:password]@host:port/db), to count "
      + "each round's rows in its ledger. Without it the ledger is NOT checked, and the result says so.")
  String pgUrl;

  @Option(names = "--results", description = "JSON Lines file to append the result to.")
  Path results;

  /** Where the ledger is read from: PostgreSQL at --pg-url; tests put a stub here. */
  Function<Vertx, Ledger> ledgers = vertx -> pgUrl == null ? null : PgLedger.connect(vertx, pgUrl);

  @Override
  public Integer call() throws Exception {
    String token = adminToken != null ? adminToken : System.getenv("IDEMGATE_ADMIN_TOKEN");
    if (token == null || token.isBlank()) {
      throw new IllegalArgumentException("storm needs --admin-token or IDEMGATE_ADMIN_TOKEN to read the charge log");
    }
    target.connections = concurrency;
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1));
    Ledger ledger = null;
    try {
      ledger = ledgers.apply(vertx);
      if (ledger == null) {
        System.err.println("storm: the ledger is NOT CHECKED (no --pg-url): a payment charged twice under two provider keys "
            + "would pass unseen");
      }
      Promise<JsonObject> done = Promise.promise();
      Storm storm = new Storm(vertx, token, ledger);
      vertx.runOnContext(v -> storm.run().onComplete(done));
      JsonObject result = done.future().toCompletionStage().toCompletableFuture().get(10, TimeUnit.MINUTES);
      Results.append(results, result);
      return result.getInteger("rounds_passed").equals(rounds) ? 0 : 1;
    } finally {
      if (ledger != null) {
        ledger.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      }
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  /** Sequence number of the unmeasured warm-up round's key (measured rounds count from 0). */
  private static final int WARM_UP_ROUND = 999;

  /** What a storm round's checks were, in words for the result line. */
  static final String CHECKS = "per round: one 201 created, one payment id in every 201, one charge and one charge "
      + "request in the simulator's log for the key's provider key, one row for the key in the ledger";

  private final class Storm {
    private final HttpClient client;
    private final HttpClient admin;
    private final String token;
    private final Ledger ledger;
    private final PaymentTraffic traffic = new PaymentTraffic(target.keyPrefix("storm"), 0);
    private final LatencyRecorder all = new LatencyRecorder();
    private final LatencyRecorder conflicts = new LatencyRecorder();
    private final LatencyRecorder created = new LatencyRecorder();
    /** The same bursts with a new key per request: every answer, to count the ones that are not 201. */
    private final LatencyRecorder freshBurst = new LatencyRecorder();
    /**
     * The fresh bursts' 201s only: what a 409 in the storm is compared with. A failed answer is no
     * new payment, and a fast 503 in the divisor would flatter nothing but the failure.
     */
    private final LatencyRecorder freshBurstCreated = new LatencyRecorder();
    private final JsonArray roundLog = new JsonArray();
    private long replayed;
    private long stormNanos;
    private int roundsPassed;

    Storm(Vertx vertx, String token, Ledger ledger) {
      this.client = target.client(vertx);
      this.admin = vertx.createHttpClient(new HttpClientOptions()
          .setDefaultHost(adminUrl.getHost()).setDefaultPort(adminUrl.getPort()));
      this.token = token;
      this.ledger = ledger;
    }

    Future<JsonObject> run() {
      // One unmeasured round of each kind first (the JIT has not seen the 409 path yet), then the
      // measured rounds, a storm and a burst of new payments in turn so both meet the same machine.
      return openConnections()
          .compose(v -> round(WARM_UP_ROUND, false))
          .compose(v -> freshBurst(WARM_UP_ROUND, false))
          .compose(v -> rounds(0))
          .map(v -> result());
    }

    private Future<Void> rounds(int n) {
      return n == rounds ? Future.succeededFuture()
          : round(n, true).compose(v -> freshBurst(n, true)).compose(v -> rounds(n + 1));
    }

    /**
     * Opens every connection before the first round (a cheap authenticated 404), so a round measures
     * the gateway deciding 1,000 twins, not 1,000 TCP handshakes.
     */
    private Future<Void> openConnections() {
      List<Future<?>> warm = new ArrayList<>();
      for (int i = 0; i < concurrency; i++) {
        warm.add(client.request(new RequestOptions().setMethod(HttpMethod.GET).setURI("/v1/payments/pay_warmup")
                .putHeader("Authorization", "Bearer " + target.apiKey))
            .compose(r -> r.send().compose(response -> response.body())));
      }
      return Future.join(warm).mapEmpty();
    }

    private Future<Void> round(int n, boolean measured) {
      long sequence = n;
      String key = traffic.key(sequence);
      List<Future<?>> twins = new ArrayList<>(concurrency);
      long start = System.nanoTime();
      RoundTally tally = new RoundTally();
      for (int i = 0; i < concurrency; i++) {
        twins.add(target.pay(client, key, traffic.body(sequence))
            .onSuccess(response -> {
              if (!measured) {
                return;
              }
              long latency = System.nanoTime() - start;
              int status = response.statusCode();
              all.response(status, latency, status == 201 || status == 409);
              if (status == 409) {
                conflicts.response(409, latency, true);
                tally.conflicts++;
              } else if (status == 201) {
                tally.paymentIds.add(String.valueOf(response.getHeader("Location")));
                if ("true".equals(response.getHeader("Idempotent-Replayed"))) {
                  replayed++;
                  tally.replayed++;
                } else {
                  created.response(201, latency, true);
                  tally.created++;
                }
              } else {
                tally.others++;
              }
            })
            .onFailure(failure -> {
              if (measured) {
                all.failure(failure);
                tally.others++;
              }
            }));
      }
      return Future.join(twins).otherwiseEmpty().compose(v -> {
        if (!measured) {
          return Future.<Void>succeededFuture();
        }
        stormNanos += System.nanoTime() - start;
        return charges(key).compose(charges -> ledgerRows(key).map(rows -> {
          check(key, tally, charges, rows);
          return null;
        }));
      });
    }

    /** The round's entry in the log, and whether it passed every check of {@link #CHECKS}. */
    private void check(String key, RoundTally tally, JsonObject charges, Long ledgerRows) {
      int chargeCount = charges.getJsonArray("charges", new JsonArray()).size();
      // null when the simulator has forgotten keys and cannot tell: not 1, so the round fails.
      Long providerRequests = charges.getLong("requests");
      // bench/run.sh reads these messages when the gateway went away during the storm: keep
      // "<n> answers created", "<n> charges in", "<n> charge requests", "<n> rows in the ledger"
      // and "201s named <n> payments" as they are.
      List<String> failed = new ArrayList<>();
      if (tally.created != 1) {
        failed.add(tally.created + " answers created the payment (201 not replayed)");
      }
      if (tally.paymentIds.size() > 1) {
        failed.add("the 201s named " + tally.paymentIds.size() + " payments: " + tally.paymentIds);
      }
      if (chargeCount != 1) {
        failed.add(chargeCount + " charges in the simulator's log");
      }
      if (providerRequests == null || providerRequests != 1) {
        failed.add((providerRequests == null ? "an unknown number of" : providerRequests.toString())
            + " charge requests reached the simulator");
      }
      if (ledgerRows != null && ledgerRows != 1) {
        failed.add(ledgerRows + " rows in the ledger");
      }
      if (failed.isEmpty()) {
        roundsPassed++;
      } else {
        System.err.println("storm: round on key " + key + " failed: " + String.join("; ", failed));
      }
      roundLog.add(new JsonObject().put("key", key).put("created", tally.created).put("conflicts", tally.conflicts)
          .put("replayed", tally.replayed).put("other_answers_or_failures", tally.others)
          .put("payment_ids", tally.paymentIds.size())
          .put("charges", chargeCount).put("provider_requests", providerRequests)
          .put("ledger_rows", ledgerRows == null ? "NOT CHECKED" : ledgerRows)
          .put("passed", failed.isEmpty()).put("failed_checks", new JsonArray(new ArrayList<Object>(failed))));
    }

    /**
     * As many bursts as storm rounds, same connections and same size, but every request a new
     * payment with its own key: the latency of new payments when {@code concurrency} of them land
     * at once, which is what the storm's 409s must beat (the "409s have a lower p99 than
     * new payments", measured under the same load shape).
     */
    private Future<Void> freshBurst(int n, boolean measured) {
      List<Future<?>> payments = new ArrayList<>(concurrency);
      long start = System.nanoTime();
      for (int i = 0; i < concurrency; i++) {
        long sequence = 1_000_000L + (long) n * concurrency + i;
        payments.add(target.pay(client, traffic.key(sequence), traffic.body(sequence))
            .onSuccess(response -> {
              if (measured) {
                long latency = System.nanoTime() - start;
                boolean isCreated = response.statusCode() == 201;
                freshBurst.response(response.statusCode(), latency, isCreated);
                if (isCreated) {
                  freshBurstCreated.response(201, latency, true);
                }
              }
            })
            .onFailure(failure -> {
              if (measured) {
                freshBurst.failure(failure);
              }
            }));
      }
      return Future.join(payments).otherwiseEmpty().mapEmpty();
    }

    private Future<JsonObject> charges(String key) {
      String uri = "/admin/simulator/charges?merchant=" + encode(merchant) + "&key=" + encode(key);
      return admin.request(new RequestOptions().setMethod(HttpMethod.GET).setURI(uri)
              .putHeader("Authorization", "Bearer " + token))
          .compose(r -> r.send().compose(response -> response.body().map(body -> {
            if (response.statusCode() != 200) {
              throw new IllegalStateException("charge log answered " + response.statusCode() + ": " + body);
            }
            return body.toJsonObject();
          })));
    }

    /** The key's ledger rows, or null when the ledger is not read (no --pg-url). */
    private Future<Long> ledgerRows(String key) {
      return ledger == null ? Future.succeededFuture(null) : ledger.rows(merchant, key);
    }

    private JsonObject result() {
      double seconds = stormNanos / 1e9;
      JsonObject conflictPercentiles = LatencyRecorder.percentiles(conflicts.histogram());
      JsonObject fresh = freshBurst.tally();
      return Results.line("storm", "loadgen-storm", "gateway", "burst", target.protocolLabel())
          .put("connections", concurrency)
          .mergeIn(all.figures(seconds))
          // The row's errors: the storm's and the fresh bursts', since both feed its verdict.
          .put("errors", all.errors() + freshBurst.errors())
          .put("rounds", rounds)
          .put("rounds_passed", roundsPassed)
          .put("checks", CHECKS)
          .put("ledger_check", ledger == null ? "NOT CHECKED: no --pg-url" : "rows in " + PgLedger.TABLE)
          .put("created_201", created.responses())
          .put("replayed_201", replayed)
          .put("conflict_409", conflicts.responses())
          .put("conflict_p50_ms", conflictPercentiles.getValue("p50_ms"))
          .put("conflict_p99_ms", conflictPercentiles.getValue("p99_ms"))
          .put("conflict_p999_ms", conflictPercentiles.getValue("p999_ms"))
          .put("fresh_burst_p99_ms", LatencyRecorder.percentiles(freshBurstCreated.histogram()).getValue("p99_ms"))
          .put("fresh_burst_201", freshBurstCreated.responses())
          .put("fresh_burst_responses", freshBurst.responses())
          .put("fresh_burst_errors", fresh.getLong("errors"))
          .put("fresh_burst_statuses", fresh.getJsonObject("statuses"))
          .put("fresh_burst_failures", fresh.getJsonObject("failures"))
          .put("round_log", roundLog);
    }
  }

  /** What one measured round's answers were. */
  private static final class RoundTally {
    long created;
    long conflicts;
    long replayed;
    /** Answers neither 201 nor 409, and requests that got no answer. */
    long others;
    /** The Location of every 201, created or replayed: one payment means one id. */
    final Set<String> paymentIds = new HashSet<>();
  }

  private static String encode(String s) {
    return java.net.URLEncoder.encode(s, java.nio.charset.StandardCharsets.UTF_8);
  }
}
