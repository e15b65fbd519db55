package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * HTTP/1.1 framing around a body the gateway does not read, over raw sockets. A client that sends
 * {@code Expect: 100-continue} holds its body back until it gets 100 (Continue); answered with a
 * final status instead, it may skip the body (RFC 9110 §10.1.1). The connection must then end, or
 * the client's next request would be read as the body it never sent. A client that sends its body
 * unasked is read to its end, and its connection kept.
 */
class ExpectContinueIT {
  private static TestGateway gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    // An idle timeout far past the reads below: a connection that ends within them was closed on purpose.
    gateway = TestGateway.start(Map.of("IDEMGATE_HTTP_IDLE_TIMEOUT", "60s"));
    http = new Http();
  }

  @AfterAll
  static void stop() {
    http.close();
    gateway.close();
  }

  private static final String PAYMENT = "{\"amount\":1000,\"currency\":\"EUR\",\"source\":\"tok_visa\"}";

  private static String payHead(String extra) {
    return "POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
        + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + Http.newKey() + "\r\n" + extra;
  }

  /** One answer read off the socket: its status line, its head and its body (by Content-Length). */
  private record Answer(String statusLine, String head, String body) {
    boolean closes() {
      return head.lines().anyMatch(line -> line.toLowerCase(Locale.ROOT).replace(" ", "").equals("connection:close"));
    }
  }

  private static Answer readAnswer(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    int matched = 0;
    while (matched < 4) {
      int b = in.read();
      if (b < 0) {
        throw new IOException("the connection ended mid-answer: " + head.toString(StandardCharsets.UTF_8));
      }
      head.write(b);
      matched = (b == '\r' && matched % 2 == 0) || (b == '\n' && matched % 2 == 1) ? matched + 1 : b == '\r' ? 1 : 0;
    }
    String text = head.toString(StandardCharsets.UTF_8);
    int length = text.lines().filter(line -> line.regionMatches(true, 0, "Content-Length:", 0, 15))
        .map(line -> Integer.parseInt(line.substring(15).trim())).findFirst().orElse(0);
    byte[] body = in.readNBytes(length);
    return new Answer(text.lines().findFirst().orElse(""), text, new String(body, StandardCharsets.UTF_8));
  }

  /** What the gateway sends after the answer until it closes the connection (within the socket's timeout). */
  private static String restUntilClosed(Socket socket) throws IOException {
    try {
      return new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    } catch (SocketTimeoutException e) {
      return "<still open after " + socket.getSoTimeout() + " ms>";
    } catch (SocketException e) {
      return ""; // reset: closed all the same
    }
  }

  @Test
  @DisplayName("a request that expects 100-continue and is refused before its body is read (401, 413, 415, 417, "
      + "404, 405, a bad or missing key's 400, a GET's 404) gets its answer with Connection: close, then the "
      + "connection is closed: the body it held back is not waited for")
  void refusedWithheldBodyClosesTheConnection() throws IOException {
    Map<String, String> refusals = new LinkedHashMap<>();
    String expect = "Expect: 100-continue\r\nContent-Length: " + PAYMENT.length() + "\r\n\r\n";
    refusals.put("401", "POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk_nobody\r\n"
        + "Content-Type: application/json\r\nIdempotency-Key: " + Http.newKey() + "\r\n" + expect);
    refusals.put("413", payHead("Expect: 100-continue\r\nContent-Length: " + (70 * 1024) + "\r\n\r\n"));
    refusals.put("415", "POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
        + "\r\nContent-Type: text/plain\r\nIdempotency-Key: " + Http.newKey() + "\r\n" + expect);
    refusals.put("417", payHead("Expect: 100-continue, something-else\r\nContent-Length: " + PAYMENT.length() + "\r\n\r\n"));
    refusals.put("404", "POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n" + expect);
    refusals.put("405", "PUT /pay HTTP/1.1\r\nHost: 127.0.0.1\r\n" + expect);
    refusals.put("400", "POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
        + "\r\nContent-Type: application/json\r\nIdempotency-Key: two words\r\n" + expect);
    refusals.put("400 ", "POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
        + "\r\nContent-Type: application/json\r\n" + expect);
    refusals.put("404  ", "GET /v1/payments/pay_none HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
        + "\r\n" + expect);
    Set<String> requestIds = new HashSet<>();
    try (CapturedLogs problems = CapturedLogs.of(Problems.class); CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      for (Map.Entry<String, String> refusal : refusals.entrySet()) {
        String status = refusal.getKey().trim();
        try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
          socket.setSoTimeout(5_000);
          socket.getOutputStream().write(refusal.getValue().getBytes(StandardCharsets.UTF_8));
          Answer answer = readAnswer(socket.getInputStream());
          answer.head().lines().filter(line -> line.regionMatches(true, 0, "X-Request-Id:", 0, 13))
              .forEach(line -> requestIds.add(line.substring(13).trim()));
          assertThat(answer.statusLine()).as(refusal.getKey()).startsWith("HTTP/1.1 " + status + " ");
          assertThat(answer.closes()).as(status + " says Connection: close\n" + answer.head()).isTrue();
          assertThat(restUntilClosed(socket)).as(status + ": nothing more, then the close").isEmpty();
        }
      }
      assertThat(problems.events()).filteredOn(e -> e.getLevel().isGreaterOrEqual(Level.WARN)).isEmpty();
      // The close comes after the answer: each refusal is logged with its status, none as 499 client_closed
      // (the 404 and 405 of no route since session 33 too).
      assertThat(access.events().stream().filter(line -> requestIds.contains(logged(line, "request_id")))
          .map(line -> logged(line, "status")))
          .containsExactlyInAnyOrder("401", "413", "415", "417", "404", "405", "400", "400", "404");
    }
  }

  private static String logged(ILoggingEvent line, String key) {
    return line.getKeyValuePairs().stream().filter(pair -> pair.key.equals(key)).map(pair -> String.valueOf(pair.value))
        .findFirst().orElse("none");
  }

  @Test
  @DisplayName("on the management port too: an admin request that expects 100-continue and is refused 401 gets "
      + "Connection: close, then the connection is closed")
  void managementRefusalClosesTheConnection() throws IOException {
    try (Socket socket = new Socket("127.0.0.1", gateway.managementPort())) {
      socket.setSoTimeout(5_000);
      socket.getOutputStream().write(("POST /admin/pending/pay_none/resolve HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          + "Authorization: Bearer wrong\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
          + "Content-Length: 30\r\n\r\n").getBytes(StandardCharsets.UTF_8));
      Answer answer = readAnswer(socket.getInputStream());
      assertThat(answer.statusLine()).startsWith("HTTP/1.1 401 ");
      assertThat(answer.closes()).as(answer.head()).isTrue();
      assertThat(restUntilClosed(socket)).isEmpty();
    }
  }

  @Test
  @DisplayName("a payment's GET that expects 100-continue for a body gets its 200 unread, with Connection: close, "
      + "then the connection is closed")
  void readWithWithheldBodyClosesTheConnection() throws IOException {
    String location = http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(1000, "tok_visa")).header("Location");
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(5_000);
      socket.getOutputStream().write(("GET " + location + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
          + KEY_A + "\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n").getBytes(StandardCharsets.UTF_8));
      Answer answer = readAnswer(socket.getInputStream());
      assertThat(answer.statusLine()).startsWith("HTTP/1.1 200 ");
      assertThat(answer.closes()).as(answer.head()).isTrue();
      assertThat(restUntilClosed(socket)).isEmpty();
    }
  }

  @Test
  @DisplayName("a client that skips its held-back body after a 401 and sends its next request on the same "
      + "connection gets no answer read from the wrong bytes (HTTP/1.0 400): the connection was closed")
  void nextRequestAfterSkippedBodyIsNotMisread() throws IOException {
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(5_000);
      OutputStream out = socket.getOutputStream();
      out.write(("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk_nobody\r\nContent-Type: "
          + "application/json\r\nIdempotency-Key: " + Http.newKey() + "\r\nExpect: 100-continue\r\nContent-Length: "
          + PAYMENT.length() + "\r\n\r\n").getBytes(StandardCharsets.UTF_8));
      Answer refused = readAnswer(socket.getInputStream());
      assertThat(refused.statusLine()).startsWith("HTTP/1.1 401 ");
      try {
        out.write((payHead("Content-Length: " + PAYMENT.length() + "\r\n\r\n") + PAYMENT).getBytes(StandardCharsets.UTF_8));
      } catch (SocketException closed) {
        // the close came first: as good
      }
      assertThat(restUntilClosed(socket)).as("what the skipped body's connection answered next").isEmpty();
    }
  }

  @Test
  @DisplayName("a refused request that expects 100-continue but sends its body at once (as load testers do) "
      + "still reads its whole answer")
  void withheldBodySentAnywayStillGetsItsAnswer() throws IOException {
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(5_000);
      socket.getOutputStream().write(("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk_nobody\r\n"
          + "Content-Type: application/json\r\nIdempotency-Key: " + Http.newKey() + "\r\nExpect: 100-continue\r\n"
          + "Content-Length: " + PAYMENT.length() + "\r\n\r\n" + PAYMENT).getBytes(StandardCharsets.UTF_8));
      Answer answer = readAnswer(socket.getInputStream());
      assertThat(answer.statusLine()).startsWith("HTTP/1.1 401 ");
      assertThat(answer.body()).contains("\"code\":\"unauthorized\"");
    }
  }

  @Test
  @DisplayName("a payment pipelined behind a refused request that expects 100-continue and sent its body at once is "
      + "not processed: the refusal said Connection: close (RFC 9112 §9.6)")
  void paymentPipelinedBehindAClosingAnswerIsNotProcessed() throws Exception {
    String key = Http.newKey();
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(5_000);
      socket.getOutputStream().write(("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk_nobody\r\n"
          + "Content-Type: application/json\r\nIdempotency-Key: " + Http.newKey() + "\r\nExpect: 100-continue\r\n"
          + "Content-Length: " + PAYMENT.length() + "\r\n\r\n" + PAYMENT
          + "POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
          + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + key + "\r\nContent-Length: " + PAYMENT.length()
          + "\r\n\r\n" + PAYMENT).getBytes(StandardCharsets.UTF_8));
      Answer refused = readAnswer(socket.getInputStream());
      assertThat(refused.statusLine()).startsWith("HTTP/1.1 401 ");
      assertThat(refused.closes()).as(refused.head()).isTrue();
      restUntilClosed(socket);
    }
    Thread.sleep(1_000); // a payment the gateway took would have been claimed by now
    Http.Reply retry = http.pay(gateway.apiPort(), KEY_A, key, new io.vertx.core.json.JsonObject(PAYMENT));
    assertThat(retry.header("Idempotent-Replayed"))
        .as("the pipelined payment's key, sent again on a new connection (%d): %s", retry.status(), retry.body())
        .isNull();
    assertThat(retry.status()).isEqualTo(201);
  }

  @Test
  @DisplayName("a request that expects 100-continue and is accepted gets 100, sends its body, is charged, and "
      + "its connection serves the next request")
  void acceptedContinueKeepsTheConnection() throws IOException {
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      InputStream in = socket.getInputStream();
      out.write(payHead("Expect: 100-continue\r\nContent-Length: " + PAYMENT.length() + "\r\n\r\n")
          .getBytes(StandardCharsets.UTF_8));
      Answer interim = readAnswer(in);
      assertThat(interim.statusLine()).startsWith("HTTP/1.1 100 ");
      out.write(PAYMENT.getBytes(StandardCharsets.UTF_8));
      Answer created = readAnswer(in);
      assertThat(created.statusLine()).startsWith("HTTP/1.1 201 ");
      assertThat(created.closes()).as(created.head()).isFalse();

      out.write((payHead("Content-Length: " + PAYMENT.length() + "\r\n\r\n") + PAYMENT).getBytes(StandardCharsets.UTF_8));
      assertThat(readAnswer(in).statusLine()).as("the next request on the connection").startsWith("HTTP/1.1 201 ");
    }
  }

  @Test
  @DisplayName("a request without Expect refused before its 64 KiB body is read gets its 401 without Connection: "
      + "close; the body is read and dropped, and the connection serves the next request")
  void refusedUnaskedBodyIsReadAndTheConnectionKept() throws IOException {
    String padding = "{\"amount\":1000,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"metadata\":{\"pad\":\"";
    String big = padding + "x".repeat(64 * 1024 - padding.length() - 3) + "\"}}";
    assertThat(big.length()).isEqualTo(64 * 1024);
    try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      InputStream in = socket.getInputStream();
      for (boolean bodyAfterTheAnswer : new boolean[] {false, true}) {
        String head = "POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk_nobody\r\nContent-Type: "
            + "application/json\r\nIdempotency-Key: " + Http.newKey() + "\r\nContent-Length: " + big.length() + "\r\n\r\n";
        Answer refused;
        if (bodyAfterTheAnswer) {
          out.write(head.getBytes(StandardCharsets.UTF_8));
          refused = readAnswer(in);
          out.write(big.getBytes(StandardCharsets.UTF_8));
        } else {
          out.write((head + big).getBytes(StandardCharsets.UTF_8));
          refused = readAnswer(in);
        }
        assertThat(refused.statusLine()).as("body after the answer: %s", bodyAfterTheAnswer).startsWith("HTTP/1.1 401 ");
        assertThat(refused.closes()).as(refused.head()).isFalse();
      }
      out.write((payHead("Content-Length: " + PAYMENT.length() + "\r\n\r\n") + PAYMENT).getBytes(StandardCharsets.UTF_8));
      assertThat(readAnswer(in).statusLine()).as("the next request on the connection").startsWith("HTTP/1.1 201 ");
    }
  }
}
