package dev.idemgate.observability;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** What an SRE sees: the meters after a few payments, and one log line per request, with nothing secret in either. */
class ObservabilityIT {
  private static TestGateway gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start();
    http = new Http();
  }

  @AfterAll
  static void stop() {
    http.close();
    gateway.close();
  }

  @Test
  @DisplayName("/metrics has the request, latency, connection, gate, store, provider, in-flight, JVM and Vert.x pool meters (each database pool by name) after a few payments, and no key, amount or reference")
  void metricsAfterPayments() {
    String key = "metrics-secret-key-" + System.nanoTime();
    JsonObject body = new JsonObject().put("amount", 987_654_321).put("currency", "EUR").put("source", "tok_visa")
        .put("merchant_reference", "order-secret-ref-42");
    http.pay(gateway.apiPort(), KEY_A, key, body);
    http.pay(gateway.apiPort(), KEY_A, key, body);
    http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(10, "tok_decline"));

    String scrape = http.get(gateway.managementPort(), "/metrics", null).body();
    assertThat(scrape)
        .contains("idemgate_requests_total{outcome=\"created\"}")
        .contains("idemgate_requests_total{outcome=\"replayed\"}")
        .contains("idemgate_requests_total{outcome=\"declined\"}")
        .contains("idemgate_gate_latency_seconds_bucket")
        .contains("idemgate_store_latency_seconds_bucket{operation=\"claim\"")
        .contains("idemgate_store_latency_seconds_bucket{operation=\"complete\"")
        .contains("idemgate_provider_latency_seconds_bucket{outcome=\"succeeded\"")
        .contains("idemgate_inflight_requests")
        .contains("idemgate_recovery_pending")
        .contains("idemgate_log_lines_dropped_total")
        .contains("jvm_memory_used_bytes")
        .contains("idemgate_request_latency_seconds_bucket{outcome=\"created\"")
        .contains("idemgate_request_latency_seconds_bucket{outcome=\"replayed\"")
        .containsPattern("(?m)^idemgate_http_connections [1-9]") // the test client's kept-alive connection
        // Each pool under its own name: unnamed, the database pools all reported as the first one
        // created, and the Redis pools as random UUIDs.
        .containsPattern("vertx_pool_in_use\\{pool_name=\"api-[0-9]+\",pool_type=\"sql\"")
        .containsPattern("vertx_pool_in_use\\{pool_name=\"api-[0-9]+-gate\",pool_type=\"redis\"")
        .contains("vertx_pool_in_use{pool_name=\"management\",pool_type=\"sql\"")
        .contains("vertx_pool_in_use{pool_name=\"recovery\",pool_type=\"redis\"")
        // The retry above was answered from the in-process replay cache, which holds both answers.
        .containsPattern("(?m)^idemgate_replay_cache_hits_total [1-9]")
        .containsPattern("(?m)^idemgate_replay_cache_entries [1-9]");
    // The amount as a number of its own: its digits may turn up inside a sample's value by chance.
    assertThat(scrape).doesNotContain(key, "order-secret-ref-42", KEY_A, "merchant_a")
        .doesNotContainPattern("(?<![0-9.])987654321(?![0-9])");
    assertThat(scrape).as("the clients' per-command meters are off").doesNotContain("vertx_redis_", "vertx_sql_");
  }

  /**
   * The request latency histogram's {@code le} values, in seconds, written as docs/operations.md
   * lists them and as a query must match them (written out here, not read from GatewayMetrics, so
   * that a change to either is seen).
   */
  private static final List<String> REQUEST_LATENCY_BOUNDARIES =
      List.of("0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0");

  @Test
  @DisplayName("idemgate_request_latency_seconds has for every outcome exactly the 14 documented buckets from 1 ms to "
      + "30 s and +Inf, so 18 series per outcome and 252 per pod (14 outcomes) (Micrometer's default ladder made 69 buckets per outcome, "
      + "936 series)")
  void requestLatencyHasTheDocumentedBuckets() {
    String key = Http.newKey();
    JsonObject payment = Http.payment(1200, "tok_visa");
    assertThat(http.pay(gateway.apiPort(), KEY_A, key, payment).status()).isEqualTo(201);
    assertThat(http.pay(gateway.apiPort(), KEY_A, key, payment).status()).isEqualTo(201);
    assertThat(http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(10, "tok_decline")).status()).isEqualTo(402);
    String scrape = http.get(gateway.managementPort(), "/metrics", null).body();

    Histogram latency = Histogram.read(scrape, "idemgate_request_latency_seconds", "outcome");
    int outcomes = GatewayMetrics.RequestOutcome.values().length;
    assertThat(latency.series()).as("series of idemgate_request_latency_seconds: %d outcomes x (14 buckets, +Inf, _count, "
        + "_sum, _max); finite buckets per outcome: %s", outcomes, latency.bucketCounts()).isEqualTo(outcomes * 18);
    assertThat(latency.boundaries().keySet()).as("outcomes").containsExactlyInAnyOrderElementsOf(
        java.util.Arrays.stream(GatewayMetrics.RequestOutcome.values()).map(o -> o.name().toLowerCase(java.util.Locale.ROOT)).toList());
    latency.assertBuckets(REQUEST_LATENCY_BOUNDARIES);
    Map<String, Double> counts = latency.counts();
    assertThat(counts.get("created")).as("_count of created").isGreaterThanOrEqualTo(1);
    assertThat(counts.get("replayed")).as("_count of replayed").isGreaterThanOrEqualTo(1);
  }

  /**
   * The {@code le} values of the gate, store and provider latency histograms, in seconds, written as
   * docs/operations.md lists them (written out here, not read from GatewayMetrics, so that a change
   * to either is seen). Each ends at its call's default timeout: redis_timeout 0.5 s, store_timeout
   * 5 s, provider_timeout 10 s.
   */
  private static final List<String> GATE_LATENCY_BOUNDARIES =
      List.of("0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5");
  private static final List<String> STORE_LATENCY_BOUNDARIES =
      List.of("0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0");
  private static final List<String> PROVIDER_LATENCY_BOUNDARIES =
      List.of("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0");

  @Test
  @DisplayName("the gate, store and provider latency histograms have their documented buckets (gate 1 ms to 0.5 s, store "
      + "1 ms to 5 s, provider 5 ms to 10 s) for every step, operation and provider outcome from start-up: "
      + "13 + 3 x 16 + 4 x 15 = 121 series per pod (Micrometer's default ladder made 72 per label value: 360 after a few "
      + "payments, up to 576)")
  void dependencyLatencyHistogramsHaveTheDocumentedBuckets() {
    String key = Http.newKey();
    JsonObject payment = Http.payment(1300, "tok_visa");
    assertThat(http.pay(gateway.apiPort(), KEY_A, key, payment).status()).isEqualTo(201);
    assertThat(http.pay(gateway.apiPort(), KEY_A, key, payment).status()).isEqualTo(201);
    assertThat(http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(10, "tok_decline")).status()).isEqualTo(402);
    String scrape = http.get(gateway.managementPort(), "/metrics", null).body();

    Histogram gate = Histogram.read(scrape, "idemgate_gate_latency_seconds", "step");
    Histogram store = Histogram.read(scrape, "idemgate_store_latency_seconds", "operation");
    Histogram provider = Histogram.read(scrape, "idemgate_provider_latency_seconds", "outcome");
    assertThat(gate.series() + store.series() + provider.series())
        .as("series of the gate, store and provider latency histograms (gate %d, store %d, provider %d); finite buckets "
            + "per label value: gate %s, store %s, provider %s", gate.series(), store.series(), provider.series(),
            gate.bucketCounts(), store.bucketCounts(), provider.bucketCounts())
        .isEqualTo(121);
    assertThat(gate.boundaries().keySet()).as("gate steps").containsExactly("claim");
    assertThat(store.boundaries().keySet()).as("store operations").containsExactlyInAnyOrder("held", "claim", "complete");
    assertThat(provider.boundaries().keySet()).as("provider outcomes")
        .containsExactlyInAnyOrder("succeeded", "declined", "not_attempted", "unknown");
    gate.assertBuckets(GATE_LATENCY_BOUNDARIES);
    store.assertBuckets(STORE_LATENCY_BOUNDARIES);
    provider.assertBuckets(PROVIDER_LATENCY_BOUNDARIES);
    // The payments above went through each timer: the first and the decline through the gate, the
    // store's claim and completion, and the provider (the replay was answered from the cache).
    assertThat(gate.counts().get("claim")).as("gate claims timed").isGreaterThanOrEqualTo(2);
    assertThat(store.counts().get("claim")).as("store claims timed").isGreaterThanOrEqualTo(2);
    assertThat(store.counts().get("complete")).as("store completions timed").isGreaterThanOrEqualTo(2);
    assertThat(provider.counts().get("succeeded")).as("provider calls succeeded").isGreaterThanOrEqualTo(1);
    assertThat(provider.counts().get("declined")).as("provider calls declined").isGreaterThanOrEqualTo(1);
  }

  /**
   * One histogram meter as the scrape writes it, by the value of its one tag: the finite {@code le}
   * values in the order written, the {@code +Inf} bucket and {@code _count}, and how many series it
   * has in all ({@code _bucket}, {@code _count}, {@code _sum}, {@code _max}).
   */
  private record Histogram(String name, Map<String, List<String>> boundaries, Map<String, Double> infinite,
      Map<String, Double> counts, int series) {
    static Histogram read(String scrape, String name, String tag) {
      Matcher sample = Pattern.compile("(?m)^" + Pattern.quote(name) + "(_bucket|_count|_sum|_max)\\{" + Pattern.quote(tag)
          + "=\"([a-z_]+)\"(?:,le=\"([^\"]+)\")?} (\\S+)$").matcher(scrape);
      Map<String, List<String>> boundaries = new TreeMap<>();
      Map<String, Double> infinite = new TreeMap<>();
      Map<String, Double> counts = new TreeMap<>();
      int series = 0;
      while (sample.find()) {
        series++;
        String value = sample.group(2);
        double sampled = Double.parseDouble(sample.group(4));
        if (sample.group(1).equals("_bucket") && sample.group(3).equals("+Inf")) {
          infinite.put(value, sampled);
        } else if (sample.group(1).equals("_bucket")) {
          boundaries.computeIfAbsent(value, v -> new ArrayList<>()).add(sample.group(3));
        } else if (sample.group(1).equals("_count")) {
          counts.put(value, sampled);
        }
      }
      return new Histogram(name, boundaries, infinite, counts, series);
    }

    Map<String, Integer> bucketCounts() {
      Map<String, Integer> perValue = new TreeMap<>();
      boundaries.forEach((value, les) -> perValue.put(value, les.size()));
      return perValue;
    }

    /** Exactly these finite buckets for every tag value, and +Inf holding every observation. */
    void assertBuckets(List<String> expected) {
      boundaries.forEach((value, les) -> {
        assertThat(les).as("le boundaries of %s{%s}", name, value).containsExactlyElementsOf(expected);
        assertThat(infinite.get(value)).as("le=+Inf of %s{%s}: every call counted", name, value).isEqualTo(counts.get(value));
      });
    }
  }

  @Test
  @DisplayName("a payment that fails inside the gateway (500 internal_error) is counted as internal_error, not as a rejected request")
  void internalErrorIsCountedAsSuch() {
    // A record the code never writes: COMPLETED without its stored answer (a hand-made repair, say).
    // Reading it throws, which no step of the payment path expects: a real unexpected failure.
    String key = Http.newKey();
    JsonObject body = Http.payment(4321, "tok_visa");
    assertThat(http.pay(gateway.apiPort(), KEY_A, key, body).status()).isEqualTo(201);
    Redis redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
    try (TestDb db = new TestDb(http.vertx())) {
      db.query("UPDATE idemgate.idempotency_keys SET response_status = NULL WHERE merchant_id = $1 AND idempotency_key = $2",
          TestGateway.MERCHANT_A, key);
      // Only PostgreSQL answers the retry: Redis forgets the key, and the body's other field order
      // misses the in-process replay cache.
      Http.await(redis.send(Request.cmd(Command.DEL).arg(RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(key)))));
      JsonObject reordered = new JsonObject();
      List<String> fields = new ArrayList<>(body.fieldNames());
      Collections.reverse(fields);
      fields.forEach(field -> reordered.put(field, body.getValue(field)));
      String before = http.get(gateway.managementPort(), "/metrics", null).body();

      Http.Reply failed = http.pay(gateway.apiPort(), KEY_A, key, reordered);
      assertThat(failed.status()).isEqualTo(500);
      assertThat(failed.json().getString("code")).isEqualTo("internal_error");

      String internal = "idemgate_requests_total{outcome=\"internal_error\"}";
      String rejected = "idemgate_requests_total{outcome=\"rejected\"}";
      // The request is counted once its answer has been written, which the client may read a moment
      // earlier: wait for the count to move (or 5 s) before comparing.
      Waits.eventually(Duration.ofSeconds(5), () -> !Scrape.value(http.get(gateway.managementPort(), "/metrics", null).body(),
          internal).equals(Scrape.value(before, internal)), "the request counted");
      String after = http.get(gateway.managementPort(), "/metrics", null).body();
      assertThat(Scrape.value(after, internal)).as(internal).hasValue(Scrape.value(before, internal).orElse(0) + 1);
      assertThat(Scrape.value(after, rejected)).as(rejected).isEqualTo(Scrape.value(before, rejected));
    } finally {
      redis.close();
    }
  }

  @Test
  @DisplayName("after idle spells, each gate pool counts at most the one connection its pipeline keeps as in use")
  void gateConnectionsLeftForIdlenessAreNotCountedInUse() throws Exception {
    // A spell of 2 s passes the reuse limit (1.5 s): the next payment leaves the quiet connection to
    // its read-idle close (3 s after its last answer) and opens a new one. A spell of 3.5 s outlasts
    // that close, which ends the connection before the next payment. Before, every connection so
    // ended stayed "in use" on the meter.
    for (long spellMs : new long[] {2_000, 3_500, 2_000, 2_000}) {
      assertThat(http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(10, "tok_visa")).status()).isEqualTo(201);
      Thread.sleep(spellMs); // the last: until the connection left by the last payment has been closed
    }
    String scrape = http.get(gateway.managementPort(), "/metrics", null).body();
    Matcher gatePools = Pattern
        .compile("(?m)^vertx_pool_in_use\\{pool_name=\"(api-[0-9]+-gate)\",pool_type=\"redis\"\\} (\\S+)$").matcher(scrape);
    Map<String, Double> inUse = new TreeMap<>();
    while (gatePools.find()) {
      inUse.put(gatePools.group(1), Double.parseDouble(gatePools.group(2)));
    }
    assertThat(inUse).as("vertx_pool_in_use of each API verticle's gate pool").isNotEmpty()
        .allSatisfy((pool, connections) -> assertThat(connections).as(pool).isLessThanOrEqualTo(1.0));
  }

  @Test
  @DisplayName("idemgate_store_group_payments counts every claim and completion, and concurrent payments share statements")
  void groupSizesAreMetered() {
    String before = http.get(gateway.managementPort(), "/metrics", null).body();
    List<Future<Http.Reply>> payments = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      payments.add(http.payAsync(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(100 + i, "tok_visa").encode(), Map.of()));
    }
    payments.forEach(p -> assertThat(Http.await(p).status()).isEqualTo(201));
    String after = http.get(gateway.managementPort(), "/metrics", null).body();

    for (String operation : List.of("claim", "complete")) {
      double statements = scraped(after, operation, "count") - scraped(before, operation, "count");
      double carried = scraped(after, operation, "sum") - scraped(before, operation, "sum");
      assertThat(carried).as("%s: every payment in some statement", operation).isEqualTo(40);
      assertThat(statements).as("%s: 40 payments sent at once share statements", operation).isLessThan(40);
    }
  }

  @Test
  @DisplayName("idemgate_store_errors_total has a series for each store operation before its first failure, so "
      + "that rate() sees that failure and the dashboard reads 0, not no data")
  void storeErrorsAreScrapedBeforeTheFirstOne() {
    String scrape = http.get(gateway.managementPort(), "/metrics", null).body();
    for (String operation : List.of("held", "claim", "complete")) {
      assertThat(Scrape.value(scrape, "idemgate_store_errors_total{operation=\"" + operation + "\"}"))
          .as("idemgate_store_errors_total{operation=\"%s\"}", operation).isPresent();
    }
  }

  /** {@code idemgate_store_group_payments_<part>{operation="..."}} from a scrape; 0 when absent. */
  private static double scraped(String scrape, String operation, String part) {
    return Scrape.value(scrape, "idemgate_store_group_payments_" + part + "{operation=\"" + operation + "\"}").orElse(0);
  }

  @Test
  @DisplayName("each request writes one access log line with its request id, merchant, outcome, status, latency and a key hash — never the key or the body")
  void oneAccessLinePerRequest() {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      String key = "log-secret-key-" + System.nanoTime();
      // Nine digits: a short amount turns up by chance in the latency or a hex id (4242 did, in 4.424285 ms).
      Http.Reply reply = http.pay(gateway.apiPort(), KEY_A, key, Http.payment(987_654_319, "tok_visa"));
      ILoggingEvent line = lineOf(access, reply);
      Map<String, String> fields = fields(line);
      assertThat(fields).containsEntry("merchant", TestGateway.MERCHANT_A).containsEntry("outcome", "created")
          .containsEntry("status", "201").containsKeys("latency_ms", "key_sha256");
      assertThat(fields.get("key_sha256")).hasSize(16).isNotEqualTo(key);
      String everything = line.getFormattedMessage() + fields;
      assertThat(everything).doesNotContain(key, KEY_A, "987654319", "tok_visa");
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', nullValues = "ABSENT", value = {
      "an ingress's request id|5f1e0c2a9b7d4e3f8a6b1c0d2e4f6a8b|5f1e0c2a9b7d4e3f8a6b1c0d2e4f6a8b",
      "one with a space|abc def|ABSENT",
      "one over 128 characters|LONG|ABSENT",
      "one holding a card number|trace-4242424242424242|redacted:card_number",
      "the API key the request is sent with|KEY_A|redacted:api_key",
      "one holding the API key the request is sent with|trace-KEY_A-1|redacted:api_key",
      "another merchant's API key|KEY_B|redacted:api_key",
      "the admin token|ADMIN_TOKEN|redacted:admin_token"})
  @DisplayName("the X-Request-Id a payment arrives with (an ingress's) is logged as forwarded_request_id beside the "
      + "gateway's own, which the answer carries; one that is not a plain token of up to 128 characters is not, nor a "
      + "card number, an API key or the admin token")
  void forwardedRequestIdIsLogged(String what, String sent, String logged) {
    String header = sent.equals("LONG") ? "r".repeat(129)
        : sent.replace("KEY_A", KEY_A).replace("KEY_B", TestGateway.KEY_B).replace("ADMIN_TOKEN", TestGateway.ADMIN_TOKEN);
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      Http.Reply reply = Http.await(http.payAsync(gateway.apiPort(), KEY_A, Http.newKey(),
          Http.payment(10, "tok_visa").encode(), Map.of("X-Request-Id", header)));
      assertThat(reply.status()).isEqualTo(201);
      assertThat(reply.header("X-Request-Id")).as("the gateway's own id").startsWith("req_");
      Map<String, String> fields = fields(lineOf(access, reply));
      if (logged == null) {
        assertThat(fields).as(what).doesNotContainKey("forwarded_request_id");
      } else {
        assertThat(fields).as(what).containsEntry("forwarded_request_id", logged);
      }
      assertThat(fields.toString()).doesNotContain("4242424242424242", KEY_A, TestGateway.KEY_B, TestGateway.ADMIN_TOKEN);
    }
  }

  @Test
  @DisplayName("over HTTP/2 an answered payment is logged and counted with its own status and outcome, not as 499 client_closed; a stream reset before its answer is")
  void http2AnswersAreNotClientClosed() throws Exception {
    io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      io.vertx.core.http.HttpClient h2 = vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions()
          .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
      double closedBefore = clientClosedSoFar();
      // A charge (the claim, the provider and the completion: answered after asynchronous steps) and a decline.
      Map<String, String> answered = new TreeMap<>();
      for (String source : List.of("tok_visa", "tok_decline")) {
        String requestId = Http.await(h2.request(new io.vertx.core.http.RequestOptions().setMethod(HttpMethod.POST)
                .setHost("127.0.0.1").setPort(gateway.apiPort()).setURI("/pay")
                .addHeader("Authorization", "Bearer " + KEY_A).addHeader("Content-Type", "application/json")
                .addHeader("Idempotency-Key", Http.newKey()))
            .compose(request -> request.send(Http.payment(1500, source).encode())
                .compose(response -> {
                  assertThat(response.version()).isEqualTo(io.vertx.core.http.HttpVersion.HTTP_2);
                  return response.body().map(b -> response.statusCode() + " " + response.getHeader("X-Request-Id"));
                })));
        answered.put(source, requestId);
      }
      assertThat(answered.get("tok_visa")).startsWith("201 ");
      assertThat(answered.get("tok_decline")).startsWith("402 ");
      for (String source : answered.keySet()) {
        String requestId = answered.get(source).split(" ")[1];
        Map<String, String> line = fields(awaitLine(access, requestId, f -> requestId.equals(f.get("request_id"))));
        assertThat(line).as(source)
            .containsEntry("status", answered.get(source).split(" ")[0])
            .containsEntry("outcome", source.equals("tok_visa") ? "created" : "declined");
      }
      assertThat(clientClosedSoFar()).as("idemgate_requests_total{outcome=client_closed}").isEqualTo(closedBefore);

      // A stream the client resets before its answer is still one: 499 client_closed.
      String slowKey = Http.newKey();
      io.vertx.core.http.HttpClientRequest slow = Http.await(h2.request(new io.vertx.core.http.RequestOptions()
          .setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(gateway.apiPort()).setURI("/pay")
          .addHeader("Authorization", "Bearer " + KEY_A).addHeader("Content-Type", "application/json")
          .addHeader("Idempotency-Key", slowKey)));
      slow.end(Http.payment(1501, "tok_slow").encode()); // the simulator answers tok_slow after 2 s
      Thread.sleep(300); // received and under way, not answered
      Http.await(slow.reset());
      Map<String, String> reset = fields(awaitLine(access, "the reset stream", f -> "client_closed".equals(f.get("outcome"))));
      assertThat(reset).containsEntry("status", "499").containsEntry("route", "pay");
      assertThat(clientClosedSoFar()).isEqualTo(closedBefore + 1);
    } finally {
      Http.await(vertx.close());
    }
  }

  private static double clientClosedSoFar() {
    return Scrape.value(http.get(gateway.managementPort(), "/metrics", null).body(),
        "idemgate_requests_total{outcome=\"client_closed\"}").orElse(0);
  }

  @Test
  @DisplayName("a client that hangs up before the answer is logged as 499 client_closed and counted so, and its payment still completes")
  void clientGoneBeforeTheAnswer() throws Exception {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      String key = Http.newKey();
      JsonObject payment = Http.payment(1234, "tok_slow"); // the simulator answers tok_slow after 2 s
      String body = payment.encode();
      try (java.net.Socket socket = new java.net.Socket("127.0.0.1", gateway.apiPort())) {
        String request = "POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
            + "\r\nIdempotency-Key: " + key + "\r\nContent-Type: application/json\r\nContent-Length: "
            + body.length() + "\r\n\r\n" + body;
        socket.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        socket.getOutputStream().flush();
        Thread.sleep(300); // received and under way, not answered
      }
      ILoggingEvent line = awaitLine(access, "client_closed", fields -> "client_closed".equals(fields.get("outcome")));
      assertThat(fields(line)).containsEntry("status", "499").containsEntry("route", "pay");
      assertThat(http.get(gateway.managementPort(), "/metrics", null).body())
          .containsPattern("(?m)^idemgate_requests_total\\{outcome=\"client_closed\"\\} [1-9]");

      // The payment went on without its client: the retry gets the one charge's answer.
      Http.Reply retry = http.pay(gateway.apiPort(), KEY_A, key, payment);
      long retryDeadline = System.currentTimeMillis() + 10_000;
      while (retry.status() == 409 && System.currentTimeMillis() < retryDeadline) { // still in flight
        Thread.sleep(200);
        retry = http.pay(gateway.apiPort(), KEY_A, key, payment);
      }
      assertThat(retry.status()).isEqualTo(201);
      assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
    }
  }

  @Test
  @DisplayName("an admin request with a wrong token writes an access line with status 401, its path and admin_token refused — never the token or the body")
  void refusedAdminRequestIsLogged() {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      String wrongToken = "wrong-admin-token-" + System.nanoTime();
      String path = "/admin/pending/pay_" + UUID.randomUUID().toString().replace("-", "") + "/resolve";
      String verdict = "{\"outcome\": \"succeeded\", \"provider_reference\": \"ch_secret_" + System.nanoTime() + "\"}";
      Http.Reply reply = http.send(HttpMethod.POST, gateway.managementPort(), path,
          Map.of("Authorization", "Bearer " + wrongToken, "Content-Type", "application/json"), Buffer.buffer(verdict));
      assertThat(reply.status()).isEqualTo(401);

      ILoggingEvent line = lineOf(access, reply);
      assertThat(fields(line)).containsEntry("method", "POST").containsEntry("path", path).containsEntry("status", "401")
          .containsEntry("remote_address", "127.0.0.1").containsEntry("admin_token", "refused").containsKey("latency_ms");
      String everything = line.getFormattedMessage() + fields(line);
      assertThat(everything).doesNotContain(wrongToken, TestGateway.ADMIN_TOKEN, "ch_secret_", "outcome");
    }
  }

  @Test
  @DisplayName("an admin verdict's access line names its payment id as sent, though the id's digits hold a "
      + "Luhn-valid run (one id in 800 does): a payment id is no card number")
  void paymentIdHoldingALuhnValidRunIsLoggedAsSent() {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      // 28706087292934 passes the Luhn check; this path was logged as redacted:card_number.
      String path = "/admin/pending/pay_25f99578e2f44da28706087292934bfe/resolve";
      Http.Reply reply = http.send(HttpMethod.POST, gateway.managementPort(), path,
          Map.of("Authorization", "Bearer " + TestGateway.ADMIN_TOKEN, "Content-Type", "application/json"),
          Buffer.buffer("{\"outcome\": \"not_charged\"}"));
      assertThat(reply.status()).isEqualTo(404);
      assertThat(fields(lineOf(access, reply))).containsEntry("path", path).containsEntry("status", "404");
    }
  }

  @Test
  @DisplayName("an accepted admin request writes an access line with status 200 and its path without the query, which may carry a client's key")
  void acceptedAdminRequestIsLogged() {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      String clientKey = "admin-log-secret-key-" + System.nanoTime();
      Http.Reply reply = http.get(gateway.managementPort(),
          "/admin/simulator/charges?merchant=" + TestGateway.MERCHANT_A + "&key=" + clientKey, TestGateway.ADMIN_TOKEN);
      assertThat(reply.status()).isEqualTo(200);

      ILoggingEvent line = lineOf(access, reply);
      assertThat(fields(line)).containsEntry("method", "GET").containsEntry("path", "/admin/simulator/charges")
          .containsEntry("status", "200").containsEntry("admin_token", "accepted");
      assertThat(line.getFormattedMessage() + fields(line)).doesNotContain(clientKey, TestGateway.ADMIN_TOKEN);
    }
  }

  @Test
  @DisplayName("an admin request whose client hangs up before the answer is logged as 499")
  void adminClientGoneBeforeTheAnswer() throws Exception {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      String path = "/admin/pending/pay_" + UUID.randomUUID().toString().replace("-", "") + "/resolve";
      try (java.net.Socket socket = new java.net.Socket("127.0.0.1", gateway.managementPort())) {
        String request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TestGateway.ADMIN_TOKEN
            + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"outcome\"";
        socket.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        socket.getOutputStream().flush();
        Thread.sleep(300); // the headers are read, the body is still awaited
      }
      ILoggingEvent line = awaitLine(access, path, fields -> path.equals(fields.get("path")));
      assertThat(fields(line)).containsEntry("status", "499").containsEntry("admin_token", "accepted");
    }
  }

  @Test
  @DisplayName("an admin path that cannot be decoded is logged with status 400, its token not checked")
  void undecodableAdminPathIsLogged() throws Exception {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      try (java.net.Socket socket = new java.net.Socket("127.0.0.1", gateway.managementPort())) {
        socket.setSoTimeout(10_000);
        socket.getOutputStream().write("GET /admin/pending/%zz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            .getBytes(java.nio.charset.StandardCharsets.UTF_8));
        assertThat(new String(socket.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8))
            .startsWith("HTTP/1.1 400 ");
      }
      ILoggingEvent line = awaitLine(access, "/admin/pending/%zz", fields -> "/admin/pending/%zz".equals(fields.get("path")));
      assertThat(fields(line)).containsEntry("status", "400").containsEntry("admin_token", "not_checked");
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "a fragment in the target (refused before routing)|GET /admin/pending#frag|400|/admin/pending",
      "a URL of a scheme other than http as target (refused before routing)|GET ftp://127.0.0.1/admin/pending|400|/admin/pending",
      "headers too large to read (refused before routing)|GET /admin/pending BIG|431|/admin/pending",
      "two Host lines (refused before routing)|GET /admin/pending TWO_HOSTS|400|/admin/pending",
      "a query string that cannot be decoded|GET /admin/pending?limit=%zz|400|/admin/pending",
      "a card number in the path|GET /admin/pending/4242424242424242|404|redacted:card_number",
      "a verdict body that is not JSON|POST /admin/pending/pay_0123456789abcdef0123456789abcdef/resolve {\"outcome\"|400|"
          + "/admin/pending/pay_0123456789abcdef0123456789abcdef/resolve"})
  @DisplayName("a malformed admin request gets exactly one access line, with its status and path — never its token, "
      + "query or body")
  void malformedAdminRequestIsLoggedOnce(String what, String request, int status, String path) throws Exception {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      String[] parts = request.split(" ", 3);
      String body = parts[0].equals("POST") ? parts[2] : "";
      String bigHeader = parts.length > 2 && parts[2].equals("BIG") ? "X-Padding: " + "x".repeat(10_000) + "\r\n" : "";
      String answer = rawExchange(parts[0] + " " + parts[1] + " HTTP/1.1\r\n" + hostLines(parts) + "Connection: close\r\n"
          + "Authorization: Bearer " + TestGateway.ADMIN_TOKEN + "\r\n" + bigHeader
          + (body.isEmpty() ? "" : "Content-Type: application/json\r\nContent-Length: " + body.length() + "\r\n")
          + "\r\n" + body);
      assertThat(answer).as(what).startsWith("HTTP/1.1 " + status + " ");
      Matcher id = Pattern.compile("(?im)^X-Request-Id: *(\\S+)").matcher(answer);
      assertThat(id.find()).as("the answer names its request id: " + answer).isTrue();
      String requestId = id.group(1);

      ILoggingEvent line = awaitLine(access, what, fields -> requestId.equals(fields.get("request_id")));
      assertThat(fields(line)).containsEntry("path", path).containsEntry("status", String.valueOf(status))
          .containsEntry("method", parts[0]).containsEntry("remote_address", "127.0.0.1").containsKey("admin_token");
      assertThat(line.getFormattedMessage() + fields(line))
          .doesNotContain(TestGateway.ADMIN_TOKEN, "frag", "%zz", "outcome", "4242424242424242");
      Waits.sleep(300); // a second line would come within the same turn of the loop
      assertThat(access.events()).filteredOn(e -> requestId.equals(fields(e).get("request_id"))).as("lines").hasSize(1);
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "a path no route takes|GET /v1/payment/pay_1?merchant=m|404|/v1/payment/pay_1",
      "a method the payment route does not take|DELETE /pay|405|/pay",
      "a path that cannot be decoded|GET /pay/%zz|400|/pay/%zz",
      "a fragment in the target (refused before routing)|GET /pay#frag|400|/pay",
      "headers too large to read (refused before routing)|GET /pay BIG|431|/pay",
      "two Host lines (refused before routing)|GET /pay TWO_HOSTS|400|/pay",
      "no Host over HTTP/1.1 (refused before routing)|GET /pay NO_HOST|400|/pay",
      "a card number in the path|GET /v1/cards/4242424242424242/pay|404|redacted:card_number"})
  @DisplayName("a request no API route takes gets exactly one access line, route none, with its status and path — "
      + "never its query, its API key or a card number")
  void unroutedApiRequestIsLoggedOnce(String what, String request, int status, String path) throws Exception {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      String[] parts = request.split(" ", 3);
      String bigHeader = parts.length > 2 && parts[2].equals("BIG") ? "X-Padding: " + "x".repeat(20_000) + "\r\n" : "";
      String answer = rawExchange(gateway.apiPort(), parts[0] + " " + parts[1] + " HTTP/1.1\r\n" + hostLines(parts)
          + "Connection: close\r\nAuthorization: Bearer " + KEY_A + "\r\n" + bigHeader + "\r\n");
      assertThat(answer).as(what).startsWith("HTTP/1.1 " + status + " ");
      Matcher id = Pattern.compile("(?im)^X-Request-Id: *(\\S+)").matcher(answer);
      assertThat(id.find()).as("the answer names its request id: " + answer).isTrue();
      String requestId = id.group(1);

      ILoggingEvent line = awaitLine(access, what, fields -> requestId.equals(fields.get("request_id")));
      assertThat(fields(line)).containsEntry("route", "none").containsEntry("path", path)
          .containsEntry("status", String.valueOf(status)).containsEntry("method", parts[0]);
      assertThat(line.getFormattedMessage() + fields(line))
          .doesNotContain(KEY_A, "merchant=m", "frag", "4242424242424242");
      Waits.sleep(300); // a second line would come within the same turn of the loop
      assertThat(access.events()).filteredOn(e -> requestId.equals(fields(e).get("request_id"))).as("lines").hasSize(1);
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "a card number as the method, API port|API|4242424242424242|/pay|405|redacted:card_number",
      "a card number as the method, management port|MANAGEMENT|4242424242424242|/admin/pending|401|redacted:card_number",
      "a method of 3,000 characters, API port|API|LONG|/pay|405|XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
      "a method of 3,000 characters, management port|MANAGEMENT|LONG|/admin/pending|401|XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"})
  @DisplayName("a method is whatever a client sent: its access line never holds a card number, and at most 32 characters of it")
  void methodIsLoggedAsLoggable(String what, String port, String method, String path, int status, String logged)
      throws Exception {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      String sent = method.equals("LONG") ? "X".repeat(3_000) : method;
      String answer = rawExchange(port.equals("API") ? gateway.apiPort() : gateway.managementPort(),
          sent + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
      assertThat(answer).as(what).startsWith("HTTP/1.1 " + status + " ");
      Matcher id = Pattern.compile("(?im)^X-Request-Id: *(\\S+)").matcher(answer);
      assertThat(id.find()).as("the answer names its request id: " + answer).isTrue();
      String requestId = id.group(1);

      ILoggingEvent line = awaitLine(access, what, fields -> requestId.equals(fields.get("request_id")));
      assertThat(fields(line)).containsEntry("method", logged).containsEntry("path", path);
      assertThat(line.getFormattedMessage() + fields(line)).doesNotContain("4242424242424242");
    }
  }

  @Test
  @DisplayName("a request line too long to read (414) gets no access line on the API port: it has no method or path to tell "
      + "(Netty hands on a stand-in, GET /bad-request, which no client sent)")
  void unreadableRequestLineIsNotLogged() throws Exception {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      String answer = rawExchange(gateway.apiPort(), "GET /pay/" + "a".repeat(5_000) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          + "Connection: close\r\n\r\n");
      assertThat(answer).contains(" 414 ");
      Matcher id = Pattern.compile("(?im)^X-Request-Id: *(\\S+)").matcher(answer);
      assertThat(id.find()).as("the answer names its request id: " + answer).isTrue();
      Waits.sleep(300); // a line would be written within the same turn of the loop
      assertThat(access.events()).filteredOn(e -> id.group(1).equals(fields(e).get("request_id"))).as("lines").isEmpty();
    }
  }

  /** The Host field lines of a request from the cases above: one, unless the case says TWO_HOSTS or NO_HOST. */
  private static String hostLines(String[] parts) {
    String hosts = parts.length > 2 ? parts[2] : "";
    return hosts.equals("NO_HOST") ? "" : hosts.equals("TWO_HOSTS") ? "Host: 127.0.0.1\r\nHost: other.example\r\n"
        : "Host: 127.0.0.1\r\n";
  }

  /** Sends {@code request} as it is to the management port and reads the whole answer (the request asks to close). */
  private static String rawExchange(String request) throws Exception {
    return rawExchange(gateway.managementPort(), request);
  }

  /** Sends {@code request} as it is to {@code port} and reads the whole answer (the request asks to close). */
  private static String rawExchange(int port, String request) throws Exception {
    try (java.net.Socket socket = new java.net.Socket("127.0.0.1", port)) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      socket.getOutputStream().flush();
      return new String(socket.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    }
  }

  @Test
  @DisplayName("health probes and metrics scrapes write no access line, while an admin request between them does")
  void probesAndScrapesAreNotLogged() {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      List<String> unlogged = new ArrayList<>();
      for (String path : List.of("/health/live", "/health/ready", "/metrics")) {
        Http.Reply reply = http.get(gateway.managementPort(), path, null);
        assertThat(reply.status()).as(path).isEqualTo(200);
        unlogged.add(reply.header("X-Request-Id"));
      }
      // The management port has one event loop: the admin line comes after any the probes wrote.
      lineOf(access, http.get(gateway.managementPort(), "/admin/pending", TestGateway.ADMIN_TOKEN));
      assertThat(access.events()).extracting(e -> fields(e).get("request_id")).doesNotContainAnyElementsOf(unlogged);
    }
  }

  /** The access line of the request that got {@code reply}, waited for (it is written once the answer went out). */
  private static ILoggingEvent lineOf(CapturedLogs access, Http.Reply reply) {
    String requestId = reply.header("X-Request-Id");
    return awaitLine(access, requestId, fields -> requestId.equals(fields.get("request_id")));
  }

  private static ILoggingEvent awaitLine(CapturedLogs access, String description, Predicate<Map<String, String>> match) {
    Supplier<Optional<ILoggingEvent>> line = () -> access.events().stream().filter(e -> match.test(fields(e))).findFirst();
    Waits.eventually(Duration.ofSeconds(5), () -> line.get().isPresent(), "an access line for " + description);
    return line.get().orElseThrow();
  }

  private static Map<String, String> fields(ILoggingEvent event) {
    return event.getKeyValuePairs() == null ? Map.of() : event.getKeyValuePairs().stream()
        .filter(kv -> kv.value != null)
        .collect(Collectors.toMap(kv -> kv.key, kv -> String.valueOf(kv.value), (a, b) -> a));
  }
}
