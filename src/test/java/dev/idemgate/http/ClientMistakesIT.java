package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * Requests a client gets wrong at the HTTP level, over raw sockets: each gets a problem body naming
 * it (or, past saving, a closed connection), never a 500 or an ERROR line, and nothing is charged.
 */
class ClientMistakesIT {
  private static TestGateway gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(Map.of("IDEMGATE_HTTP_IDLE_TIMEOUT", "2s", "IDEMGATE_REQUEST_BODY_TIMEOUT", "1s"));
    http = new Http();
  }

  @AfterAll
  static void stop() {
    http.close();
    gateway.close();
  }

  private static String headers(String key, String extra) {
    return "POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
        + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + key + "\r\n" + extra;
  }

  /** Sends the bytes and reads until the gateway closes the connection (Connection: close is asked). */
  private static String exchange(String request) throws IOException {
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(request.getBytes(StandardCharsets.UTF_8));
      return new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  private static String withBody(String key, String extraHeaders, String body) throws IOException {
    return exchange(headers(key, extraHeaders + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length
        + "\r\nConnection: close\r\n\r\n" + body));
  }

  private static final String PAYMENT = "{\"amount\":1000,\"currency\":\"EUR\",\"source\":\"tok_visa\"}";

  @Test
  @DisplayName("a chunked body whose chunk size is no number is the client's error: a 400 problem body, then the "
      + "connection closed, no ERROR line, nothing charged")
  void brokenChunkedBody() throws IOException {
    String key = Http.newKey();
    try (CapturedLogs problems = CapturedLogs.of(Problems.class)) {
      // Several times: before the fix, the answer was dropped unsent on most connections, not all.
      for (int attempt = 0; attempt < 5; attempt++) {
        String answer = exchange(headers(key, "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + PAYMENT + "\r\n0\r\n\r\n"));
        assertThat(answer).as("answer %d", attempt).startsWith("HTTP/1.1 400 ").containsIgnoringCase("connection: close")
            .contains("\"code\":\"invalid_request\"").contains("\"request_id\":\"req_");
      }
      assertThat(problems.events()).filteredOn(e -> e.getLevel().isGreaterOrEqual(Level.WARN)).isEmpty();
    }
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isZero();
  }

  @Test
  @DisplayName("a chunk size that is no number, sent after the headers were read, still gets its 400 before the close")
  void brokenChunkAfterHeaders() throws Exception {
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(10_000);
      socket.setTcpNoDelay(true);
      socket.getOutputStream().write(headers(Http.newKey(), "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"amo\r\n")
          .getBytes(StandardCharsets.UTF_8));
      socket.getOutputStream().flush();
      Thread.sleep(200); // the head and the first chunk read on their own
      socket.getOutputStream().write("zz\r\n".getBytes(StandardCharsets.UTF_8));
      String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertThat(answer).startsWith("HTTP/1.1 400 ").contains("\"code\":\"invalid_request\"");
    }
  }

  @Test
  @DisplayName("headers over 16 KiB get 431 and a request line over 4 KiB 414, as problem bodies; 12 KiB of headers are served")
  void oversizedHeadersAndLines() throws IOException {
    String bigHeaders = exchange(headers(Http.newKey(), "X-Padding: " + "a".repeat(17 * 1024) + "\r\n\r\n"));
    assertThat(bigHeaders).startsWith("HTTP/1.1 431 ")
        .contains("application/problem+json").contains("\"code\":\"request_header_fields_too_large\"")
        .contains("\"request_id\":\"req_");

    String longLine = exchange("GET /v1/payments/" + "a".repeat(5 * 1024) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    // The line could not be read, so neither could its version: Vert.x answers in HTTP/1.0.
    assertThat(longLine).startsWith("HTTP/1.0 414 ").contains("\"code\":\"uri_too_long\"");

    String served = withBody(Http.newKey(), "X-Padding: " + "a".repeat(12 * 1024) + "\r\n", PAYMENT);
    assertThat(served).startsWith("HTTP/1.1 201 ");
  }

  @Test
  @DisplayName("answers given before any route (431, 414, an unreadable header's 400, a malformed target's or Host's 400) "
      + "carry Date, as every answer does")
  void refusalsBeforeRoutingCarryDate() throws IOException {
    String bigHeaders = exchange(headers(Http.newKey(), "X-Padding: " + "a".repeat(17 * 1024) + "\r\n\r\n"));
    String longLine = exchange("GET /v1/payments/" + "a".repeat(5 * 1024) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    String unreadable = exchange("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\u0001b\r\nContent-Length: 0\r\n\r\n");
    String fragment = exchange("GET /pay#frag HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assertThat(fragment).startsWith("HTTP/1.1 400 ");
    String twoHosts = exchange("GET /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: other.example\r\n\r\n");
    String noHost = exchange("GET /pay HTTP/1.1\r\nConnection: close\r\n\r\n");
    assertThat(twoHosts).startsWith("HTTP/1.1 400 ");
    assertThat(noHost).startsWith("HTTP/1.1 400 ");
    for (String answer : new String[] {bigHeaders, longLine, unreadable, fragment, twoHosts, noHost}) {
      String head = answer.substring(0, Math.max(0, answer.indexOf("\r\n\r\n")));
      String date = head.lines().filter(line -> line.regionMatches(true, 0, "Date:", 0, 5))
          .map(line -> line.substring(5).trim()).findFirst().orElse(null);
      assertThat(date).as(head.lines().findFirst().orElse(answer)).isNotNull();
      ZonedDateTime sent = ZonedDateTime.parse(date, DateTimeFormatter.RFC_1123_DATE_TIME);
      assertThat(Duration.between(sent, ZonedDateTime.now()).abs()).isLessThan(Duration.ofSeconds(5));
    }
  }

  @Test
  @DisplayName("the management port's answers carry Date too: probes, metrics, admin refusals, a 404")
  void managementAnswersCarryDate() {
    for (String path : new String[] {"/health/live", "/health/ready", "/metrics", "/admin/pending", "/nothing-here"}) {
      Http.Reply reply = http.send(HttpMethod.GET, gateway.managementPort(), path, Map.of(), null);
      assertThat(reply.header("Date")).as(path + " " + reply.status()).isNotNull();
      ZonedDateTime sent = ZonedDateTime.parse(reply.header("Date"), DateTimeFormatter.RFC_1123_DATE_TIME);
      assertThat(Duration.between(sent, ZonedDateTime.now()).abs()).as(path).isLessThan(Duration.ofSeconds(5));
    }
  }

  @Test
  @DisplayName("every answer to a request with a key echoes it: a mistyped path's 404, a 405, a malformed or undecodable target's 400, a read")
  void answersOffThePaymentRouteEchoTheKey() throws IOException {
    String key = Http.newKey();
    Map<String, String> headers = Map.of("Authorization", "Bearer " + KEY_A, "Content-Type", "application/json",
        "Idempotency-Key", key);
    Http.Reply mistyped = http.send(HttpMethod.POST, gateway.apiPort(), "/v1/payment", headers, Buffer.buffer(PAYMENT));
    assertThat(mistyped.status()).isEqualTo(404);
    Http.Reply wrongMethod = http.send(HttpMethod.PUT, gateway.apiPort(), "/pay", headers, Buffer.buffer(PAYMENT));
    assertThat(wrongMethod.status()).isEqualTo(405);
    Http.Reply undecodable = http.send(HttpMethod.POST, gateway.apiPort(), "/pay%zz", headers, Buffer.buffer(PAYMENT));
    assertThat(undecodable.status()).isEqualTo(400);
    Http.Reply read = http.send(HttpMethod.GET, gateway.apiPort(), "/v1/payments/pay_none", headers, null);
    assertThat(read.status()).isEqualTo(404);
    for (Http.Reply reply : new Http.Reply[] {mistyped, wrongMethod, undecodable, read}) {
      assertThat(reply.header("Idempotency-Key")).as(reply.status() + " " + reply.body()).isEqualTo(key);
    }
    String malformed = exchange("POST /pay#x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
        + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + key + "\r\nContent-Length: "
        + PAYMENT.length() + "\r\n\r\n" + PAYMENT);
    assertThat(malformed).startsWith("HTTP/1.1 400 ").contains("\r\nIdempotency-Key: " + key + "\r\n");
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isZero();
  }

  @Test
  @DisplayName("two Idempotency-Key headers get 400 idempotency_key_invalid, two Authorization headers 401; nothing charged")
  void duplicatedHeaders() throws IOException {
    String key = Http.newKey();
    String twoKeys = withBody(key, "Idempotency-Key: " + key + "-other\r\n", PAYMENT);
    assertThat(twoKeys).startsWith("HTTP/1.1 400 ").contains("\"code\":\"idempotency_key_invalid\"");
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isZero();
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key + "-other")).isZero();

    String twoTokens = withBody(Http.newKey(), "Authorization: Bearer " + KEY_A + "\r\n", PAYMENT);
    assertThat(twoTokens).startsWith("HTTP/1.1 401 ").contains("\"code\":\"unauthorized\"");
  }

  @Test
  @DisplayName("a header with a control character gets 400, and no log line holds its value (an API key), at DEBUG too")
  void unreadableHeaderValueNotLogged() throws IOException {
    String secret = "sk_live_NOT_TO_BE_LOGGED";
    ch.qos.logback.classic.Logger root = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(
        org.slf4j.Logger.ROOT_LOGGER_NAME);
    Level before = root.getLevel();
    root.setLevel(Level.DEBUG); // log_level: DEBUG, which an operator may turn on to find a problem
    try (CapturedLogs logs = CapturedLogs.of(org.slf4j.Logger.ROOT_LOGGER_NAME)) {
      for (char control : new char[] {'\u0000', '\u0001'}) {
        String answer = exchange("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + secret + control
            + "x\r\nContent-Length: 0\r\n\r\n");
        assertThat(answer).startsWith("HTTP/1.1 400 ").contains("\"code\":\"invalid_request\"").doesNotContain(secret);
      }
      assertThat(logs.events()).as("some line says what was refused").isNotEmpty();
      assertThat(logs.events()).allSatisfy(event -> {
        assertThat(event.getFormattedMessage()).doesNotContain(secret);
        assertThat(event.getThrowableProxy() == null ? "" : event.getThrowableProxy().getMessage()).doesNotContain(secret);
      });
    } finally {
      root.setLevel(before);
    }
  }

  @Test
  @DisplayName("a method a path does not take gets 405 with an Allow header naming the ones it does, on both ports")
  void methodNotAllowedNamesTheAllowedMethods() {
    Http.Reply getPay = http.send(HttpMethod.GET, gateway.apiPort(), "/pay", Map.of("Authorization", "Bearer " + KEY_A), null);
    assertThat(getPay.status()).isEqualTo(405);
    assertThat(getPay.header("Allow")).isEqualTo("POST");
    assertThat(getPay.json().getString("code")).isEqualTo("method_not_allowed");

    Http.Reply getPaySlash = http.send(HttpMethod.GET, gateway.apiPort(), "/pay/", Map.of("Authorization", "Bearer " + KEY_A), null);
    assertThat(getPaySlash.status()).isEqualTo(405);
    assertThat(getPaySlash.header("Allow")).as("a trailing slash names the same resource").isEqualTo("POST");

    Http.Reply deletePayment = http.send(HttpMethod.DELETE, gateway.apiPort(), "/v1/payments/pay_x", Map.of(), null);
    assertThat(deletePayment.status()).isEqualTo(405);
    assertThat(deletePayment.header("Allow")).isEqualTo("GET, HEAD");

    Http.Reply postHealth = http.send(HttpMethod.POST, gateway.managementPort(), "/health/live", Map.of(), null);
    assertThat(postHealth.status()).isEqualTo(405);
    assertThat(postHealth.header("Allow")).isEqualTo("GET, HEAD");
  }

  @Test
  @DisplayName("a path with a broken percent-encoding gets a 400 problem body with a request id, on both ports")
  void brokenPercentEncoding() throws IOException {
    for (int port : new int[] {gateway.apiPort(), gateway.managementPort()}) {
      String answer;
      try (Socket socket = new Socket("127.0.0.1", port)) {
        socket.setSoTimeout(10_000);
        socket.getOutputStream().write(("GET /v1/payments/%zz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
            + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.UTF_8));
        answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      }
      assertThat(answer).as("port %d", port).startsWith("HTTP/1.1 400 ").contains("application/problem+json")
          .contains("\"code\":\"invalid_request\"").containsPattern("(?i)x-request-id: req_[0-9a-f]{16}")
          .doesNotContain("req_unassigned");
    }
  }

  @Test
  @DisplayName("a client that resets its connection mid-body causes no ERROR line and no charge")
  void resetMidBody() throws Exception {
    String key = Http.newKey();
    try (CapturedLogs problems = CapturedLogs.of(Problems.class)) {
      Socket socket = new Socket("127.0.0.1", gateway.apiPort());
      socket.getOutputStream().write(headers(key, "Content-Length: 100\r\n\r\n{\"amo").getBytes(StandardCharsets.UTF_8));
      socket.getOutputStream().flush();
      Thread.sleep(200);
      socket.setSoLinger(true, 0); // close() now sends RST
      socket.close();
      Thread.sleep(500);
      assertThat(problems.events()).filteredOn(e -> e.getLevel().isGreaterOrEqual(Level.WARN)).isEmpty();
    }
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isZero();
  }

  @Test
  @DisplayName("a charset other than UTF-8, a Content-Encoding, a Transfer-Encoding other than chunked or two Content-Types get 415; charset=utf-8 in any spelling is served")
  void charsetsAndEncodings() throws IOException {
    String latin1 = exchange(("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
        + "\r\nContent-Type: application/json; charset=iso-8859-1\r\nIdempotency-Key: " + Http.newKey()
        + "\r\nContent-Length: " + PAYMENT.length() + "\r\nConnection: close\r\n\r\n" + PAYMENT));
    assertThat(latin1).startsWith("HTTP/1.1 415 ").contains("\"code\":\"unsupported_media_type\"").contains("UTF-8");

    String gzip = withBody(Http.newKey(), "Content-Encoding: gzip\r\n", PAYMENT);
    assertThat(gzip).startsWith("HTTP/1.1 415 ").contains("uncompressed");

    String twoTypes = withBody(Http.newKey(), "Content-Type: text/plain\r\n", PAYMENT);
    assertThat(twoTypes).as("Content-Type sent twice").startsWith("HTTP/1.1 415 ");

    String gzipChunked = exchange(headers(Http.newKey(), "Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n"
        + Integer.toHexString(PAYMENT.length()) + "\r\n" + PAYMENT + "\r\n0\r\n\r\n"));
    assertThat(gzipChunked).startsWith("HTTP/1.1 415 ").contains("Transfer-Encoding");

    for (String charset : new String[] {"utf-8", "UTF-8", "\"utf-8\""}) {
      String answer = exchange("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
          + "\r\nContent-Type: application/json;charset=" + charset + "\r\nIdempotency-Key: " + Http.newKey()
          + "\r\nContent-Length: " + PAYMENT.length() + "\r\nConnection: close\r\n\r\n" + PAYMENT);
      assertThat(answer).as(charset).startsWith("HTTP/1.1 201 ");
    }
  }

  @Test
  @DisplayName("a connection on which nothing is sent is closed after http_idle_timeout")
  void idleConnectionIsClosed() throws IOException {
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(10_000);
      long opened = System.nanoTime();
      InputStream in = socket.getInputStream();
      int read;
      try {
        read = in.read();
      } catch (SocketTimeoutException e) {
        throw new AssertionError("the idle connection was still open after 10 s", e);
      }
      long afterMs = (System.nanoTime() - opened) / 1_000_000;
      assertThat(read).isEqualTo(-1);
      assertThat(afterMs).isBetween(1_500L, 8_000L);
    }
  }
}
