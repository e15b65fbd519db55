package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.RawHttp2;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** How the API port treats requests load testers send over HTTP/1.1 and h2c at the edges of the protocols. */
class HttpEdgesIT {
  private static TestGateway gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(Map.of("IDEMGATE_HTTP_IDLE_TIMEOUT", "3s", "IDEMGATE_REQUEST_BODY_TIMEOUT", "1s"));
    http = new Http();
  }

  @AfterAll
  static void stop() {
    http.close();
    gateway.close();
  }

  private static Map<String, String> h2Headers(String key, String body) {
    return Map.of("authorization", "Bearer " + KEY_A, "content-type", "application/json", "idempotency-key", key,
        "content-length", String.valueOf(body.length()));
  }

  /**
   * Sends one HTTP/1.1 POST of a payment with the request target given, as written (curl would
   * normalise it), and reads until the gateway closes the connection: a refused one at once, a
   * served one (kept alive) after the idle timeout.
   */
  private static String http1Payment(String target, String key) throws IOException {
    String body = Http.payment(1_000, "tok_visa").encode();
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(("POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + gateway.apiPort()
          + "\r\nAuthorization: Bearer " + KEY_A + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + key
          + "\r\nContent-Length: " + body.length() + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
      return new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  @Test
  @DisplayName("an HTTP/1.1 POST whose request target is no path from / nor a URL, or carries a fragment, gets 400 invalid_request, "
      + "its connection closed, and charges nothing")
  void malformedHttp1Targets() throws Exception {
    StringBuilder served = new StringBuilder();
    for (String target : new String[] {"/pay#x", "/pay?a=1#x", "pay", "*"}) {
      String key = Http.newKey();
      String answer = http1Payment(target, key);
      int charges = SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key);
      // RFC 9112 3.2: origin-form, absolute-form, or * for OPTIONS; no fragment in any of them.
      boolean refused = answer.startsWith("HTTP/1.1 400 ") && answer.contains("\"code\":\"invalid_request\"")
          && answer.toLowerCase(java.util.Locale.ROOT).contains("connection: close");
      if (charges != 0 || !refused) {
        served.append(String.format("%n  %s -> %s, %d charge(s)", target, answer.lines().findFirst().orElse("nothing"), charges));
      }
    }
    assertThat(served).as("malformed request targets served, or answered as something else than malformed").isEmpty();
  }

  /**
   * Sends {@code request} (its head and body as written) to {@code port} and reads until the gateway
   * closes the connection, or says what it had answered when it is still open 5 s after the last
   * byte came (a refused request's connection is closed; a served one is kept alive unless the
   * request asks otherwise).
   */
  private static String exchangeUntilClosed(int port, String request) throws IOException {
    try (Socket socket = new Socket("127.0.0.1", port)) {
      socket.setSoTimeout(5_000);
      socket.getOutputStream().write(request.getBytes(StandardCharsets.UTF_8));
      java.io.ByteArrayOutputStream answer = new java.io.ByteArrayOutputStream();
      byte[] chunk = new byte[8192];
      try {
        for (int read; (read = socket.getInputStream().read(chunk)) >= 0; ) {
          answer.write(chunk, 0, read);
        }
      } catch (java.net.SocketTimeoutException stillOpen) {
        return answer.toString(StandardCharsets.UTF_8) + "<still open>";
      }
      return answer.toString(StandardCharsets.UTF_8) + "<closed>";
    }
  }

  /**
   * A payment over HTTP/1.x with the version and Host field lines given (none, one, or several), as
   * written; with {@code close}, it asks for its connection to be closed after the answer.
   */
  private static String paymentWithHosts(String version, String key, boolean close, String... hosts) {
    String body = Http.payment(1_000, "tok_visa").encode();
    StringBuilder request = new StringBuilder("POST /pay ").append(version).append("\r\n");
    if (close) {
      request.append("Connection: close\r\n");
    }
    for (String host : hosts) {
      request.append("Host: ").append(host).append("\r\n");
    }
    return request.append("Authorization: Bearer ").append(KEY_A).append("\r\nContent-Type: application/json\r\n")
        .append("Idempotency-Key: ").append(key).append("\r\nContent-Length: ").append(body.length()).append("\r\n\r\n")
        .append(body).toString();
  }

  /** Whether {@code answer} is the refusal of a request's Host: 400 invalid_request naming Host, then the connection closed. */
  private static boolean refusedForHost(String answer) {
    return answer.matches("(?s)HTTP/1\\.[01] 400 .*") && answer.contains("\"code\":\"invalid_request\"")
        && answer.contains("application/problem+json") && answer.contains("Host header")
        && answer.toLowerCase(java.util.Locale.ROOT).contains("\r\nconnection: close\r\n") && answer.endsWith("<closed>");
  }

  @Test
  @DisplayName("an HTTP/1.x payment with two Host lines (alike or not), an HTTP/1.1 one with none, or one whose Host is no "
      + "host and port gets 400 invalid_request naming Host, its connection closed, and charges nothing (RFC 9112 3.2)")
  void hostFieldRefusals() throws Exception {
    String[][] cases = {
        {"HTTP/1.1", "127.0.0.1", "127.0.0.1"}, {"HTTP/1.1", "127.0.0.1", "evil.example"}, {"HTTP/1.0", "a.example", "b.example"},
        {"HTTP/1.1"}, {"HTTP/1.1", "a b"}, {"HTTP/1.1", "a/b"}, {"HTTP/1.1", "user@a.example"}, {"HTTP/1.1", "a.example:99999"},
        {"HTTP/1.1", "a.example:8o"}, {"HTTP/1.1", "[::1"}, {"HTTP/1.1", "a%20b"}, {"HTTP/1.0", "a b"},
    };
    StringBuilder served = new StringBuilder();
    for (String[] sent : cases) {
      String key = Http.newKey();
      String[] hosts = java.util.Arrays.copyOfRange(sent, 1, sent.length);
      String answer = exchangeUntilClosed(gateway.apiPort(), paymentWithHosts(sent[0], key, false, hosts));
      int charges = SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key);
      if (charges != 0 || !refusedForHost(answer)) {
        served.append(String.format("%n  %s Host %s -> %s ... %s, %d charge(s)", sent[0], java.util.Arrays.toString(hosts),
            answer.lines().findFirst().orElse("nothing"), answer.substring(Math.max(0, answer.length() - 160)), charges));
      }
    }
    assertThat(served).as("requests whose Host RFC 9112 3.2 asks to refuse, served or answered otherwise").isEmpty();
  }

  @Test
  @DisplayName("an HTTP/1.0 payment with no Host, and HTTP/1.1 ones with one Host (a name, an address, [IPv6], a port, "
      + "empty), are served")
  void hostFieldsServed() throws Exception {
    String[][] cases = {
        {"HTTP/1.0"}, {"HTTP/1.1", "127.0.0.1:" + gateway.apiPort()}, {"HTTP/1.1", "Pay.Example.com"}, {"HTTP/1.1", "[::1]:8080"},
        {"HTTP/1.1", "10.0.0.1.nip.io"}, {"HTTP/1.1", "a.example:"}, {"HTTP/1.1", ""},
    };
    for (String[] sent : cases) {
      String key = Http.newKey();
      String[] hosts = java.util.Arrays.copyOfRange(sent, 1, sent.length);
      String answer = exchangeUntilClosed(gateway.apiPort(), paymentWithHosts(sent[0], key, true, hosts));
      assertThat(answer).as("%s Host %s", sent[0], java.util.Arrays.toString(hosts)).startsWith(sent[0] + " 201 ");
      assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isOne();
    }
  }

  @Test
  @DisplayName("the management port refuses two Host lines, or none over HTTP/1.1, as the API port does; a probe with "
      + "one Host, or over HTTP/1.0 with none, is answered")
  void hostFieldsOnTheManagementPort() throws Exception {
    int port = gateway.managementPort();
    String twoHosts = exchangeUntilClosed(port, "GET /health/live HTTP/1.1\r\nHost: 10.0.0.7:9090\r\nHost: other.example\r\n\r\n");
    assertThat(refusedForHost(twoHosts)).as(twoHosts).isTrue();
    String noHost = exchangeUntilClosed(port, "GET /admin/pending HTTP/1.1\r\nAuthorization: Bearer " + TestGateway.ADMIN_TOKEN
        + "\r\n\r\n");
    assertThat(refusedForHost(noHost)).as(noHost).isTrue();
    assertThat(exchangeUntilClosed(port, "GET /health/live HTTP/1.1\r\nHost: 10.0.0.7:9090\r\nConnection: close\r\n\r\n"))
        .startsWith("HTTP/1.1 200 ");
    assertThat(exchangeUntilClosed(port, "GET /health/live HTTP/1.0\r\n\r\n")).startsWith("HTTP/1.0 200 ");
  }

  @Test
  @DisplayName("an HTTP/2 POST whose host header is not its :authority is refused as malformed (RFC 9113 8.3.1: Vert.x "
      + "resets it PROTOCOL_ERROR) and charges nothing; one whose host is the :authority is served")
  void http2HostAgainstAuthority() throws Exception {
    // :authority 127.0.0.1, :scheme http. Vert.x compares the two as written: 127.0.0.1:80, the same
    // authority with the default port, is refused too (README, known limits).
    String[] hosts = {"evil.example", "127.0.0.1:8443", "a b", "127.0.0.1:80", "127.0.0.1"};
    StringBuilder wrong = new StringBuilder();
    try (RawHttp2 client = RawHttp2.connect(gateway.apiPort())) {
      int stream = 1;
      for (String host : hosts) {
        String key = Http.newKey();
        String body = Http.payment(1_000, "tok_visa").encode();
        Map<String, String> headers = new java.util.HashMap<>(h2Headers(key, body));
        headers.put("host", host);
        client.postHeaders(stream, "/pay", headers);
        client.data(stream, body);
        int id = stream;
        String answer = client.await(line -> line.startsWith("HEADERS " + id + " ") || line.startsWith("RST " + id + " ")
            || line.equals("EOF"), Duration.ofSeconds(5));
        int charges = SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key);
        boolean same = host.equals("127.0.0.1");
        boolean judged = same ? answer.equals("HEADERS " + id + " :status=201") && charges == 1
            : (answer.equals("HEADERS " + id + " :status=400") || answer.equals("RST " + id + " error=1")) && charges == 0;
        if (!judged) {
          wrong.append(String.format("%n  host %s -> %s, %d charge(s)", host, answer, charges));
        }
        stream += 2;
      }
    }
    assertThat(wrong).as("HTTP/2 requests whose host header was not judged against :authority").isEmpty();
  }

  @Test
  @DisplayName("an HTTP/1.1 POST to an http URL (absolute-form, RFC 9112 3.2.2) is served as its path; one to a URL of "
      + "another scheme, or with no host, gets 400 invalid_request and charges nothing")
  void absoluteFormTargets() throws Exception {
    String key = Http.newKey();
    assertThat(http1Payment("http://127.0.0.1:" + gateway.apiPort() + "/pay", key)).startsWith("HTTP/1.1 201 ");
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isOne();
    assertThat(http1Payment("HTTPS://127.0.0.1/v1/payments", Http.newKey())).as("https, in capitals").startsWith("HTTP/1.1 201 ");

    StringBuilder served = new StringBuilder();
    for (String target : new String[] {"ftp://127.0.0.1/pay", "http:///pay", "http://"}) {
      String refusedKey = Http.newKey();
      String answer = http1Payment(target, refusedKey);
      int charges = SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, refusedKey);
      if (charges != 0 || !answer.startsWith("HTTP/1.1 400 ") || !answer.contains("\"code\":\"invalid_request\"")) {
        served.append(String.format("%n  %s -> %s, %d charge(s)", target, answer.lines().findFirst().orElse("nothing"), charges));
      }
    }
    assertThat(served).as("URLs that name no resource of this gateway served, or answered as something else than malformed")
        .isEmpty();
  }

  @Test
  @DisplayName("an HTTP/1.1 POST upgraded to h2c keeps its target as the :path: an absolute-form one is refused as malformed "
      + "HTTP/2 (400, or PROTOCOL_ERROR) and charges nothing, an origin-form one is served")
  void h2cUpgradeTargets() throws Exception {
    String body = Http.payment(1_000, "tok_visa").encode();
    for (String target : new String[] {"http://127.0.0.1:" + gateway.apiPort() + "/pay", "/pay"}) {
      String key = Http.newKey();
      String request = "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + gateway.apiPort()
          + "\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"
          + "\r\nAuthorization: Bearer " + KEY_A + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + key
          + "\r\nContent-Length: " + body.length() + "\r\n\r\n" + body;
      try (RawHttp2 client = RawHttp2.upgrade(gateway.apiPort(), request)) {
        String answer = client.await(line -> line.startsWith("HEADERS 1 ") || line.startsWith("RST 1 ") || line.equals("EOF"),
            Duration.ofSeconds(5));
        assertThat(client.events()).as(target).first().asString().startsWith("HTTP/1.1 101 ");
        int charges = SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key);
        if (target.startsWith("/")) {
          assertThat(answer).as(target).isEqualTo("HEADERS 1 :status=201");
          assertThat(charges).as(target).isOne();
        } else {
          assertThat(answer).as(target).isIn("HEADERS 1 :status=400", "RST 1 error=1");
          assertThat(charges).as(target).isZero();
        }
      }
    }
  }

  @Test
  @DisplayName("on the management port, an admin request whose target is malformed (HTTP/2 :path not origin-form or with a "
      + "fragment, :scheme neither http nor https; an HTTP/1.1 fragment) is refused as malformed, not served")
  void malformedTargetsOnTheManagementPort() throws Exception {
    Map<String, String> admin = Map.of("authorization", "Bearer " + TestGateway.ADMIN_TOKEN);
    String[][] cases = {
        {"http", "http://127.0.0.1/admin/pending"}, {"http", "/admin/pending#x"}, {"http", "admin/pending"}, {"ftp", "/admin/pending"},
    };
    StringBuilder served = new StringBuilder();
    try (RawHttp2 client = RawHttp2.connect(gateway.managementPort())) {
      int stream = 1;
      for (String[] target : cases) {
        int id = stream;
        client.requestHeaders(id, "GET", target[0], target[1], admin, true);
        String answer = client.await(line -> line.startsWith("HEADERS " + id + " ") || line.startsWith("RST " + id + " ")
            || line.equals("EOF"), Duration.ofSeconds(5));
        if (!answer.equals("HEADERS " + id + " :status=400") && !answer.equals("RST " + id + " error=1")) {
          served.append(String.format("%n  :scheme=%s :path=%s -> %s", target[0], target[1], answer));
        }
        stream += 2;
      }
      int good = stream;
      client.requestHeaders(good, "GET", "http", "/admin/pending", admin, true);
      assertThat(client.await(line -> line.startsWith("HEADERS " + good + " ") || line.equals("EOF"), Duration.ofSeconds(5)))
          .as("a good admin request on the same connection afterwards").isEqualTo("HEADERS " + good + " :status=200");
    }
    try (Socket socket = new Socket("127.0.0.1", gateway.managementPort())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(("GET /admin/pending#x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
          + TestGateway.ADMIN_TOKEN + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.UTF_8));
      String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!answer.startsWith("HTTP/1.1 400 ") || !answer.contains("\"code\":\"invalid_request\"")) {
        served.append(String.format("%n  HTTP/1.1 /admin/pending#x -> %s", answer.lines().findFirst().orElse("nothing")));
      }
    }
    assertThat(served).as("malformed admin requests served, or answered as something else than malformed").isEmpty();
  }

  @Test
  @DisplayName("an HTTP/2 POST whose :path is not origin-form, or whose :scheme is neither http nor https, is refused as malformed (400 or PROTOCOL_ERROR) and charges nothing")
  void malformedHttp2Targets() throws Exception {
    String[][] cases = {
        {"http", "pay"}, {"http", "*"}, {"http", "http://127.0.0.1/pay"}, {"http", "/pay#fragment"},
        {"ftp", "/pay"},
    };
    StringBuilder served = new StringBuilder();
    try (RawHttp2 client = RawHttp2.connect(gateway.apiPort())) {
      int stream = 1;
      for (String[] target : cases) {
        String key = Http.newKey();
        String body = Http.payment(1_000, "tok_visa").encode();
        client.postHeaders(stream, target[0], target[1], h2Headers(key, body));
        client.data(stream, body);
        int id = stream;
        String answer = client.await(line -> line.startsWith("HEADERS " + id + " ") || line.startsWith("RST " + id + " ")
            || line.equals("EOF"), Duration.ofSeconds(5));
        int charges = SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key);
        // RFC 9113 8.1.1: a malformed request is a stream error PROTOCOL_ERROR, which may follow an answer.
        boolean refused = answer.equals("HEADERS " + id + " :status=400") || answer.equals("RST " + id + " error=1");
        if (charges != 0 || !refused) {
          served.append(String.format("%n  :scheme=%s :path=%s -> %s, %d charge(s)", target[0], target[1], answer, charges));
        }
        stream += 2;
      }
      assertThat(served).as("malformed requests served, or answered as something else than malformed").isEmpty();

      // A client still streaming the body when the answer comes: the stream is reset, its body
      // then arriving costs the connection nothing.
      String body = Http.payment(1_000, "tok_visa").encode();
      int streaming = stream;
      client.postHeaders(streaming, "http", "pay", h2Headers(Http.newKey(), body));
      client.await(line -> line.equals("RST " + streaming + " error=1") || line.equals("EOF"), Duration.ofSeconds(5));
      client.data(streaming, body);
      int good = streaming + 2;
      client.postHeaders(good, "/pay", h2Headers(Http.newKey(), body));
      client.data(good, body);
      assertThat(client.await(line -> line.startsWith("HEADERS " + good + " ") || line.equals("EOF"), Duration.ofSeconds(5)))
          .as("a good request on the same connection afterwards; the server sent %s", client.events())
          .isEqualTo("HEADERS " + good + " :status=201");
      assertThat(client.events()).as("the streaming one was answered 400, then reset PROTOCOL_ERROR")
          .containsSubsequence("HEADERS " + streaming + " :status=400", "RST " + streaming + " error=1");
    }
  }

  @Test
  @DisplayName("200 payments pipelined on one HTTP/1.1 connection in one write are each answered, in order, and each charged "
      + "once (past 128 unanswered, Netty's WebSocket extension handler reset the connection: no answer at all)")
  void deepPipelineIsAnsweredInOrder() throws Exception {
    int count = 200;
    List<String> keys = new ArrayList<>();
    StringBuilder requests = new StringBuilder();
    for (int i = 0; i < count; i++) {
      String key = Http.newKey();
      keys.add(key);
      String body = Http.payment(1_000 + i, "tok_visa").encode();
      requests.append("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ").append(KEY_A)
          .append("\r\nContent-Type: application/json\r\nIdempotency-Key: ").append(key)
          .append("\r\nContent-Length: ").append(body.length()).append("\r\n\r\n").append(body);
    }
    List<String> answers = new ArrayList<>();
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(20_000);
      socket.getOutputStream().write(requests.toString().getBytes(StandardCharsets.UTF_8));
      InputStream in = new BufferedInputStream(socket.getInputStream());
      try {
        while (answers.size() < count) {
          String head = readHead(in);
          if (head == null) {
            break;
          }
          Matcher length = Pattern.compile("(?im)^content-length: *(\\d+)").matcher(head);
          in.readNBytes(length.find() ? Integer.parseInt(length.group(1)) : 0);
          Matcher key = Pattern.compile("(?im)^idempotency-key: *(\\S+)").matcher(head);
          answers.add(head.substring(9, 12) + " " + (key.find() ? key.group(1) : "-"));
        }
      } catch (IOException cut) {
        answers.add("connection ended: " + cut);
      }
    }
    List<String> expected = keys.stream().map(key -> "201 " + key).toList();
    assertThat(answers).as("the answers, in order").isEqualTo(expected);
    StringBuilder charges = new StringBuilder();
    for (String key : keys) {
      int made = SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key);
      if (made != 1) {
        charges.append(String.format("%n  %s: %d", key, made));
      }
    }
    assertThat(charges).as("keys not charged exactly once").isEmpty();
  }

  @Test
  @DisplayName("a client that pipelines payments on one HTTP/1.1 connection and resets it (RST) while they wait leaves no "
      + "warning or stack trace in the log, and each of its keys ends charged once, replayable and retrievable")
  void pipelineResetByTheClient() throws Exception {
    String body = "{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"merchant_reference\":\"r\"}";
    List<String> keys = new ArrayList<>();
    StringBuilder requests = new StringBuilder();
    for (int i = 0; i < 20; i++) {
      String key = Http.newKey();
      keys.add(key);
      requests.append("POST /v1/payments HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ").append(KEY_A)
          .append("\r\nContent-Type: application/json\r\nIdempotency-Key: ").append(key)
          .append("\r\nContent-Length: ").append(body.length()).append("\r\n\r\n").append(body);
    }
    List<String> warnings;
    try (CapturedLogs logs = CapturedLogs.of(org.slf4j.Logger.ROOT_LOGGER_NAME)) {
      try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
        socket.setSoTimeout(20_000);
        socket.getOutputStream().write(requests.toString().getBytes(StandardCharsets.UTF_8));
        // The first answer: the gateway has read the pipeline, the second payment is under way and
        // the third waits for it. Then a close with SO_LINGER 0, which sends RST.
        String head = readHead(socket.getInputStream());
        assertThat(head).as("the first answer").startsWith("HTTP/1.1 201 ");
        socket.setSoLinger(true, 0);
      }
      Waits.eventually(Duration.ofSeconds(15), () -> openApiConnections() == 0, "the reset connection closed by the gateway");
      warnings = warnings(logs);
    }
    assertThat(warnings).as("WARN or ERROR lines with an exception after the client's reset").isEmpty();

    StringBuilder wrong = new StringBuilder();
    for (String key : keys) {
      // A payment still under way when the reset came is waited for; one never read is made now.
      Http.Reply replay = Http.await(http.payAsync(gateway.apiPort(), KEY_A, key, body, Map.of("Prefer", "wait=10")));
      int charges = SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key);
      Http.Reply read = replay.status() == 201
          ? http.get(gateway.apiPort(), "/v1/payments/" + replay.json().getString("id"), KEY_A) : null;
      if (replay.status() != 201 || charges != 1 || read.status() != 200
          || !"succeeded".equals(read.json().getString("status"))) {
        wrong.append(String.format("%n  %s: %d %s, %d charge(s), read back %s", key, replay.status(), replay.body(), charges,
            read == null ? "-" : read.status() + " " + read.body()));
      }
    }
    assertThat(wrong).as("keys of the reset connection not charged once, replayed and read back").isEmpty();
  }

  /** The WARN and ERROR lines captured that carry an exception or name one, as logger and message. */
  private static List<String> warnings(CapturedLogs logs) {
    return logs.events().stream().filter(event -> event.getLevel().isGreaterOrEqual(ch.qos.logback.classic.Level.WARN))
        .filter(event -> event.getThrowableProxy() != null || event.getFormattedMessage().contains("Exception"))
        .map(event -> event.getLoggerName() + ": " + event.getFormattedMessage()).toList();
  }

  private static int openApiConnections() {
    return (int) Scrape.value(http.get(gateway.managementPort(), "/metrics", null).body(), "idemgate_http_connections")
        .orElseThrow();
  }

  /** An HTTP/1.1 answer's head up to its blank line, or null at the end of the stream. */
  private static String readHead(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    int matched = 0;
    for (int b; (b = in.read()) >= 0; ) {
      head.write(b);
      matched = b == "\r\n\r\n".charAt(matched) ? matched + 1 : (b == '\r' ? 1 : 0);
      if (matched == 4) {
        return head.toString(StandardCharsets.ISO_8859_1);
      }
    }
    return null;
  }
}
