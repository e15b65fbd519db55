package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The query of every admin endpoint: a parameter it does not take, one given twice, or a value it
 * cannot use gets 400 before anything is listed, looked up or done. Until this was so, an unknown
 * parameter was ignored: {@code /admin/pending?merchant=acme} (the filter is {@code merchant_id})
 * listed every merchant's pending payments, which an operator could then resolve for the wrong one.
 */
class AdminQueryParametersIT {
  private static final String NO_SUCH_PAYMENT = "pay_0123456789abcdef0123456789abcdef";
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

  private static Http.Reply send(String method, String target, String contentType, String body) {
    Map<String, String> headers = contentType == null ? Map.of("Authorization", "Bearer " + TestGateway.ADMIN_TOKEN)
        : Map.of("Authorization", "Bearer " + TestGateway.ADMIN_TOKEN, "Content-Type", contentType);
    return http.send(HttpMethod.valueOf(method), gateway.managementPort(), target, headers,
        body == null ? null : Buffer.buffer(body));
  }

  private static Http.Reply get(String target) {
    return send("GET", target, null, null);
  }

  private static JsonObject refused(Http.Reply reply, String what) {
    assertThat(reply.status()).as(what + ": " + reply.body()).isEqualTo(400);
    assertThat(reply.header("Content-Type")).as(what).isEqualTo("application/problem+json");
    JsonObject problem = reply.json();
    assertThat(problem.getString("code")).as(what).isEqualTo("invalid_request");
    assertThat(problem.getString("request_id")).as(what).startsWith("req_");
    return problem;
  }

  /** The names of a comma-separated list; an empty CSV column (no names) comes as null. */
  private static List<Object> list(String commaSeparated) {
    return commaSeparated == null ? List.of() : List.of((Object[]) commaSeparated.split(","));
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource(delimiter = '|', nullValues = "-", value = {
      "GET|/admin/pending?merchant=acme|-|merchant|limit,merchant_id,payment_id",
      "GET|/admin/pending?limt=10|-|limt|limit,merchant_id,payment_id",
      "GET|/admin/pending?merchant_id=acme&status=pending&x=1|-|status,x|limit,merchant_id,payment_id",
      "GET|/admin/pending?Merchant_Id=acme|-|Merchant_Id|limit,merchant_id,payment_id",
      "GET|/admin/anomalies?merchant_id=acme|-|merchant_id|limit,merchant",
      "GET|/admin/simulator/charges?merchant=acme&key=k1&idempotencykey=abc|-|idempotencykey|idempotency_key,key,merchant",
      "GET|/admin/reconciliations?limit=5|-|limit|",
      "GET|/admin/reconciliations/rec_00?fromat=csv|-|fromat|format",
      "POST|/admin/pending/" + NO_SUCH_PAYMENT + "/resolve?dry_run=true|{\"outcome\": \"not_charged\"}|dry_run|",
      "POST|/admin/reconciliations/rec_00/discrepancies/1/resolve?force=1|{\"note\": \"settled by hand\"}|force|"})
  @DisplayName("a query parameter the endpoint does not take gets 400 naming it and the ones it takes, before anything "
      + "is listed, looked up or done (a verdict on a payment that does not exist would get 404)")
  void unknownParameterIsRefused(String method, String target, String body, String unknown, String accepted) {
    JsonObject problem = refused(send(method, target, body == null ? null : "application/json", body), target);
    assertThat(problem.getJsonArray("unknown_parameters")).as(target).isEqualTo(new JsonArray(list(unknown)));
    assertThat(problem.getJsonArray("accepted_parameters")).as(target).isEqualTo(new JsonArray(list(accepted)));
    for (String name : unknown.split(",")) {
      assertThat(problem.getString("detail")).as(target).contains(name);
    }
  }

  @Test
  @DisplayName("a settlement upload with a parameter the endpoint does not take gets 400 with its body unread, and no "
      + "run is stored")
  void uploadWithUnknownParameterStoresNothing() {
    String name = "unknown-parameter-" + UUID.randomUUID() + ".csv";
    Http.Reply reply = send("POST", "/admin/reconciliations?name=" + name + "&merchant=shop", "text/csv",
        "settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n");
    JsonObject problem = refused(reply, "upload");
    assertThat(problem.getJsonArray("unknown_parameters")).isEqualTo(new JsonArray().add("merchant"));
    assertThat(problem.getJsonArray("accepted_parameters"))
        .isEqualTo(new JsonArray().add("from").add("merchant_prefix").add("name").add("provider").add("settlement_lag").add("to"));
    Http.Reply runs = get("/admin/reconciliations");
    assertThat(runs.status()).isEqualTo(200);
    assertThat(runs.body()).doesNotContain(name);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {
      "/admin/pending?merchant_id=merchant_a&merchant_id=merchant_b",
      "/admin/pending?limit=1&limit=1000",
      "/admin/pending?payment_id=" + NO_SUCH_PAYMENT + "&payment_id=pay_fedcba9876543210fedcba9876543210",
      "/admin/anomalies?limit=1&limit=200",
      "/admin/anomalies?merchant=merchant_a&merchant=merchant_b",
      "/admin/simulator/charges?key=k1&key=k2&merchant=merchant_a",
      "/admin/reconciliations/rec_00?format=csv&format=html"})
  @DisplayName("a parameter given twice gets 400 naming it, not read as its first value")
  void repeatedParameterIsRefused(String target) {
    // The first parameter of each target is the one given twice.
    JsonObject problem = refused(get(target), target);
    String name = target.substring(target.indexOf('?') + 1, target.indexOf('='));
    assertThat(problem.getJsonArray("repeated_parameters")).as(target).isEqualTo(new JsonArray().add(name));
    assertThat(problem.getString("detail")).as(target).contains(name);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {
      "/admin/pending?limit=-1", "/admin/pending?limit=0", "/admin/pending?limit=1001", "/admin/pending?limit=1.5",
      "/admin/pending?limit=99999999999", "/admin/pending?limit=", "/admin/pending?merchant_id=",
      "/admin/anomalies?limit=0", "/admin/anomalies?limit=201", "/admin/anomalies?limit=-1", "/admin/anomalies?limit=ten",
      "/admin/anomalies?merchant=",
      "/admin/simulator/charges?merchant=&key=k1",
      "/admin/simulator/charges?merchant=merchant_a",
      "/admin/simulator/charges?idempotency_key=abc&merchant=merchant_a&key=k1",
      "/admin/reconciliations/rec_00?format=pdf", "/admin/reconciliations/rec_00?format="})
  @DisplayName("a value a known parameter cannot take (no number, negative, out of range, empty, or two ways of naming "
      + "one thing at once) gets 400 naming the parameter")
  void badValueIsRefused(String target) {
    JsonObject problem = refused(get(target), target);
    String name = target.substring(target.indexOf('?') + 1, target.indexOf('='));
    assertThat(problem.getString("detail")).as(target).contains(name);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"from=yesterday", "to=2026-13-01", "from=2026-02-01&to=2026-01-01", "provider=",
      "from=2026-01-01&from=2026-02-01"})
  @DisplayName("an upload whose query cannot be used gets 400 naming the parameter, its body unread, and no run is stored")
  void uploadWithBadValueStoresNothing(String query) {
    String name = "bad-value-" + UUID.randomUUID() + ".csv";
    JsonObject problem = refused(send("POST", "/admin/reconciliations?name=" + name + "&" + query, "text/csv",
        "settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n"), query);
    assertThat(problem.getString("detail")).as(query).contains(query.substring(0, query.indexOf('=')));
    assertThat(get("/admin/reconciliations").body()).doesNotContain(name);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"GET /admin/pending?limit=%zz", "GET /admin/anomalies?merchant=%E0%A4%A",
      "POST /admin/reconciliations?name=%zz.csv"})
  @DisplayName("a query string that cannot be decoded (a broken percent-encoding) gets 400 saying so, an upload's body unread")
  void undecodableQueryIsRefused(String request) throws IOException {
    String[] parts = request.split(" ");
    String body = "settlement_id,provider_reference,merchant_id,amount,currency,settled_at\n";
    String answer;
    try (Socket socket = new Socket("127.0.0.1", gateway.managementPort())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write((parts[0] + " " + parts[1] + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
          + "Authorization: Bearer " + TestGateway.ADMIN_TOKEN + "\r\n"
          + (parts[0].equals("POST") ? "Content-Type: text/csv\r\nContent-Length: " + body.length() + "\r\n\r\n" + body : "\r\n"))
          .getBytes(StandardCharsets.UTF_8));
      answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }
    assertThat(answer).as(request).startsWith("HTTP/1.1 400 ").contains("application/problem+json")
        .contains("\"code\":\"invalid_request\"").contains("the query string could not be decoded");
  }
}
