package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.Http2Settings;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.StreamResetException;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** A client that stops sending in the middle of a payment's body gets 408 instead of holding the request for ever. */
class SlowBodyIT {
  private static TestGateway gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(Map.of("IDEMGATE_REQUEST_BODY_TIMEOUT", "1s", "IDEMGATE_SIMULATOR_SLOW_MS", "1500"));
    http = new Http();
  }

  @AfterAll
  static void stop() {
    http.close();
    gateway.close();
  }

  private static double inFlight() {
    return Scrape.value(http.get(gateway.managementPort(), "/metrics", null).body(), "idemgate_inflight_requests")
        .orElseThrow();
  }

  @Test
  @DisplayName("HTTP/1.1: a body that stops half way gets 408 request_timeout after request_body_timeout, the "
      + "connection is closed, and the request leaves the in-flight gauge")
  void http1BodyStopsHalfWay() throws IOException {
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
          + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + Http.newKey()
          + "\r\nContent-Length: 100\r\n\r\n{\"amount\":").getBytes(StandardCharsets.US_ASCII));
      long sent = System.nanoTime();
      // readAllBytes returns only once the gateway closed the connection (or fails after 10 s).
      String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      long afterMs = (System.nanoTime() - sent) / 1_000_000;
      assertThat(answer).startsWith("HTTP/1.1 408 ");
      assertThat(answer).containsIgnoringCase("connection: close").contains("\"code\":\"request_timeout\"");
      assertThat(afterMs).isBetween(900L, 5_000L);
    }
    Waits.eventually(Duration.ofSeconds(5), () -> inFlight() == 0, "the request leaves idemgate_inflight_requests");
  }

  @Test
  @DisplayName("HTTP/1.1: a client that hangs up half way through its body is no error of ours: no ERROR line, "
      + "and the request leaves the in-flight gauge")
  void http1ClientHangsUpHalfWay() throws IOException {
    Waits.eventually(Duration.ofSeconds(5), () -> inFlight() == 0, "no other test's request is in flight");
    try (CapturedLogs problems = CapturedLogs.of(Problems.class)) {
      try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
        socket.getOutputStream().write(("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
            + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + Http.newKey()
            + "\r\nContent-Length: 100\r\n\r\n{\"amount\":").getBytes(StandardCharsets.US_ASCII));
        socket.getOutputStream().flush();
        Waits.eventually(Duration.ofSeconds(5), () -> inFlight() == 1, "the request is in flight");
      }
      Waits.eventually(Duration.ofSeconds(5), () -> inFlight() == 0, "the request leaves idemgate_inflight_requests");
      assertThat(problems.events()).filteredOn(e -> e.getLevel().isGreaterOrEqual(Level.WARN)).isEmpty();
    }
  }

  /**
   * Sends the head and part of a body of a request to {@code path} on the management port, then
   * nothing: asserts the answer is 408 request_timeout with the connection closed, after about
   * request_body_timeout (1 s here), and returns the request's access line.
   */
  private static Map<String, String> stalledGets408(Socket socket, String headAndPartOfBody, CapturedLogs access,
      String path) throws IOException {
    socket.setSoTimeout(10_000);
    socket.getOutputStream().write(headAndPartOfBody.getBytes(StandardCharsets.US_ASCII));
    long sent = System.nanoTime();
    String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    long afterMs = (System.nanoTime() - sent) / 1_000_000;
    assertThat(answer).startsWith("HTTP/1.1 408 ").containsIgnoringCase("connection: close")
        .contains("\"code\":\"request_timeout\"");
    assertThat(afterMs).isBetween(900L, 5_000L);
    Waits.eventually(Duration.ofSeconds(5), () -> accessLine(access, path).isPresent(), "the access line of " + path);
    return accessLine(access, path).orElseThrow();
  }

  @Test
  @DisplayName("management port: an admin verdict whose body stops half way gets 408 request_timeout after "
      + "request_body_timeout, the connection closed, and its access line says 408, not 499 client_closed")
  void adminBodyStopsHalfWay() throws IOException {
    String path = "/admin/pending/pay_" + UUID.randomUUID().toString().replace("-", "") + "/resolve";
    try (CapturedLogs access = CapturedLogs.of("idemgate.access");
        Socket socket = new Socket("127.0.0.1", gateway.managementPort())) {
      assertThat(stalledGets408(socket, "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
          + TestGateway.ADMIN_TOKEN + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"outcome\"", access, path))
          .containsEntry("status", "408").containsEntry("admin_token", "accepted");
    }
  }

  @Test
  @DisplayName("management port: a settlement upload is held to request_body_timeout of silence, not of the whole "
      + "body (its file may be large): one that keeps sending for longer is read to its end and answered for what it holds")
  void settlementUploadMaySendForLongerThanTheBodyTimeout() throws IOException {
    String body = "not,a,settlement,file,at,all\n";
    try (Socket socket = new Socket("127.0.0.1", gateway.managementPort())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(("POST /admin/reconciliations?name=long.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          + "Authorization: Bearer " + TestGateway.ADMIN_TOKEN + "\r\nConnection: close\r\nContent-Length: "
          + body.length() + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      for (int i = 0; i < body.length(); i += 4) { // 8 pieces 300 ms apart: 2.1 s in all, past the 1 s timeout
        socket.getOutputStream().write(body.substring(i, Math.min(i + 4, body.length())).getBytes(StandardCharsets.US_ASCII));
        socket.getOutputStream().flush();
        Waits.sleep(300);
      }
      String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertThat(answer).startsWith("HTTP/1.1 400 ").contains("missing required column(s)");
    }
  }

  @Test
  @DisplayName("management port: a settlement upload whose body stops gets 408 request_timeout after request_body_timeout "
      + "of silence, the connection closed; its access line says 408 and its place among the uploads under way is freed")
  void settlementUploadStopsHalfWay() throws IOException {
    String path = "/admin/reconciliations";
    try (CapturedLogs access = CapturedLogs.of("idemgate.access");
        Socket socket = new Socket("127.0.0.1", gateway.managementPort())) {
      assertThat(stalledGets408(socket, "POST " + path + "?name=stalled.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          + "Authorization: Bearer " + TestGateway.ADMIN_TOKEN + "\r\nContent-Length: 100000\r\n\r\n"
          + "settlement_id,provider_reference", access, path))
          .containsEntry("status", "408").containsEntry("method", "POST");
    }
    Waits.eventually(Duration.ofSeconds(5), () -> http.get(gateway.managementPort(), "/admin/reconciliations",
        TestGateway.ADMIN_TOKEN).json().getJsonObject("under_way").getInteger("here") == 0, "no upload under way");
  }

  private static Optional<Map<String, String>> accessLine(CapturedLogs access, String path) {
    return access.events().stream().map(SlowBodyIT::fields).filter(fields -> path.equals(fields.get("path"))).findFirst();
  }

  private static Map<String, String> fields(ILoggingEvent event) {
    return event.getKeyValuePairs() == null ? Map.of() : event.getKeyValuePairs().stream()
        .filter(kv -> kv.value != null)
        .collect(Collectors.toMap(kv -> kv.key, kv -> String.valueOf(kv.value), (a, b) -> a));
  }

  @Test
  @DisplayName("h2c: a stream whose body stops half way gets 408 and is reset; the connection goes on serving")
  void http2BodyStopsHalfWay() {
    Vertx vertx = Vertx.vertx();
    try {
      HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
          .setHttp2ClearTextUpgrade(false));
      RequestOptions options = new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1")
          .setPort(gateway.apiPort()).setURI("/pay").addHeader("Authorization", "Bearer " + KEY_A)
          .addHeader("Content-Type", "application/json").addHeader("Idempotency-Key", Http.newKey());
      Promise<Integer> status = Promise.promise();
      Promise<Throwable> reset = Promise.promise();
      HttpClientRequest request = Http.await(client.request(options));
      request.setChunked(true).exceptionHandler(reset::tryComplete); // HTTP/2 has no chunks; Vert.x asks for the flag
      request.response().onSuccess(response -> status.tryComplete(response.statusCode()));
      Http.await(request.write("{\"amount\":")); // and nothing more: no END_STREAM

      assertThat(Http.await(status.future())).isEqualTo(408);
      assertThat(Http.await(reset.future())).isInstanceOf(StreamResetException.class);
      // Same client, so the same connection: it still serves a payment (tok_slow: longer than the
      // body timeout, which ends once the body is in).
      String key = Http.newKey();
      int paid = Http.await(client.request(new RequestOptions(options).putHeader("Idempotency-Key", key))
          .compose(r -> r.send(Http.payment(1700, "tok_slow").encode()))
          .map(response -> response.statusCode()));
      assertThat(paid).isEqualTo(201);
    } finally {
      Http.await(vertx.close());
    }
  }
  @Test
  @DisplayName("h2c: a body that arrives while its 408 cannot go out (the client's window is 1 byte) is not paid: "
      + "the 408 said nothing was claimed or charged")
  void http2BodyArrivingAfterItsTimeout() {
    Vertx vertx = Vertx.vertx();
    try {
      // A stream window of 1 byte: the 408's headers go out, its body waits, so the stream is not reset yet.
      HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
          .setHttp2ClearTextUpgrade(false).setInitialSettings(new Http2Settings().setInitialWindowSize(1)));
      String key = Http.newKey();
      RequestOptions options = new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1")
          .setPort(gateway.apiPort()).setURI("/pay").addHeader("Authorization", "Bearer " + KEY_A)
          .addHeader("Content-Type", "application/json").addHeader("Idempotency-Key", key);
      Promise<Integer> status = Promise.promise();
      HttpClientRequest request = Http.await(client.request(options));
      request.setChunked(true).exceptionHandler(e -> { }); // the reset that may follow is expected
      request.response().onSuccess(response -> status.tryComplete(response.statusCode()));
      String body = Http.payment(1800, "tok_visa").encode();
      Http.await(request.write(body.substring(0, 10)));
      assertThat(Http.await(status.future())).isEqualTo(408);

      request.end(body.substring(10));
      Waits.sleep(1_500); // time enough for a claim and a charge, had they been made
      assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isZero();
    } finally {
      Http.await(vertx.close());
    }
  }
}
