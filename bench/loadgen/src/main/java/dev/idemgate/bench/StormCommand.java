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
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * A retry storm: N concurrent requests on one key, round after round. Exactly one request per round
 * may create the payment (201); the others get 409 while it is in flight, or its replay (201 with
 * Idempotent-Replayed) once it is done. After each round the simulator's charge log must show
 * exactly one charge for the key; anything else fails the command.
 */
@Command(name = "storm", mixinStandardHelpOptions = true,
    description = "Concurrent requests on one key per round; counts 201 vs 409 and checks exactly one charge.")
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

  @Option(names = "--results", description = "JSON Lines file to append the result to.")
  Path results;

  @Override
  public Integer call() throws Exception {
    String token = adminToken != null ? adminToken : System.getenv("IDEMGATE_ADMIN_TOKEN");
    if (token == null || token.isBlank()) {
      throw new IllegalArgumentException("storm needs --admin-token or IDEMGATE_ADMIN_TOKEN to read the charge log");
    }
    target.connections = concurrency;
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1));
    try {
      Promise<JsonObject> done = Promise.promise();
      vertx.runOnContext(v -> new Storm(vertx, token).run().onComplete(done));
      JsonObject result = done.future().toCompletionStage().toCompletableFuture().get(10, TimeUnit.MINUTES);
      Results.append(results, result);
      return result.getInteger("rounds_with_one_charge").equals(rounds) ? 0 : 1;
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  /** Sequence number of the unmeasured warm-up round's key (measured rounds count from 0). */
  private static final int WARM_UP_ROUND = 999;

  private final class Storm {
    private final HttpClient client;
    private final HttpClient admin;
    private final String token;
    private final PaymentTraffic traffic = new PaymentTraffic(target.keyPrefix("storm"), 0);
    private final LatencyRecorder all = new LatencyRecorder();
    private final LatencyRecorder conflicts = new LatencyRecorder();
    private final LatencyRecorder created = new LatencyRecorder();
    /** The same bursts with a new key per request: what a 409 in the storm is compared with. */
    private final LatencyRecorder freshBurst = new LatencyRecorder();
    private final JsonArray roundLog = new JsonArray();
    private long replayed;
    private long stormNanos;
    private int roundsWithOneCharge;

    Storm(Vertx vertx, String token) {
      this.client = target.client(vertx);
      this.admin = vertx.createHttpClient(new HttpClientOptions()
          .setDefaultHost(adminUrl.getHost()).setDefaultPort(adminUrl.getPort()));
      this.token = token;
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
            .compose(r -> r.send()).compose(r -> r.body()));
      }
      return Future.join(warm).mapEmpty();
    }

    private Future<Void> round(int n, boolean measured) {
      long sequence = n;
      String key = traffic.key(sequence);
      List<Future<?>> twins = new ArrayList<>(concurrency);
      long start = System.nanoTime();
      long[] counts = new long[3];
      for (int i = 0; i < concurrency; i++) {
        twins.add(target.pay(client, key, traffic.body(sequence))
            .onSuccess(response -> {
              if (!measured) {
                return;
              }
              long latency = System.nanoTime() - start;
              all.response(response.statusCode(), latency, response.statusCode() == 201 || response.statusCode() == 409);
              if (response.statusCode() == 409) {
                conflicts.response(409, latency, true);
                counts[1]++;
              } else if (response.statusCode() == 201 && "true".equals(response.getHeader("Idempotent-Replayed"))) {
                replayed++;
                counts[2]++;
              } else if (response.statusCode() == 201) {
                created.response(201, latency, true);
                counts[0]++;
              }
            })
            .onFailure(failure -> {
              if (measured) {
                all.failure(failure);
              }
            }));
      }
      return Future.join(twins).otherwiseEmpty()
          .compose(v -> {
            if (!measured) {
              return Future.succeededFuture(null);
            }
            stormNanos += System.nanoTime() - start;
            return charges(key);
          })
          .compose(charges -> {
            if (charges == null) {
              return Future.<Void>succeededFuture();
            }
            int chargeCount = charges.getJsonArray("charges", new JsonArray()).size();
            if (chargeCount == 1 && counts[0] == 1) {
              roundsWithOneCharge++;
            }
            roundLog.add(new JsonObject().put("key", key).put("created", counts[0]).put("conflicts", counts[1])
                .put("replayed", counts[2]).put("charges", chargeCount)
                .put("provider_requests", charges.getValue("requests")));
            return Future.<Void>succeededFuture();
          });
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
                freshBurst.response(response.statusCode(), System.nanoTime() - start, response.statusCode() == 201);
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
          .compose(r -> r.send())
          .compose(r -> r.body().map(body -> {
            if (r.statusCode() != 200) {
              throw new IllegalStateException("charge log answered " + r.statusCode() + ": " + body);
            }
            return body.toJsonObject();
          }));
    }

    private JsonObject result() {
      double seconds = stormNanos / 1e9;
      JsonObject conflictPercentiles = LatencyRecorder.percentiles(conflicts.histogram());
      return Results.line("storm", "loadgen-storm", "gateway", "burst", target.protocolLabel())
          .put("connections", concurrency)
          .mergeIn(all.figures(seconds))
          .put("rounds", rounds)
          .put("rounds_with_one_charge", roundsWithOneCharge)
          .put("created_201", created.responses())
          .put("replayed_201", replayed)
          .put("conflict_409", conflicts.responses())
          .put("conflict_p50_ms", conflictPercentiles.getValue("p50_ms"))
          .put("conflict_p99_ms", conflictPercentiles.getValue("p99_ms"))
          .put("conflict_p999_ms", conflictPercentiles.getValue("p999_ms"))
          .put("fresh_burst_p99_ms", LatencyRecorder.percentiles(freshBurst.histogram()).getValue("p99_ms"))
          .put("fresh_burst_responses", freshBurst.responses())
          .put("round_log", roundLog);
    }
  }

  private static String encode(String s) {
    return java.net.URLEncoder.encode(s, java.nio.charset.StandardCharsets.UTF_8);
  }
}
