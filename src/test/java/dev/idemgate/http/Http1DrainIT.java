package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A stopping gateway and its HTTP/1.1 keep-alive clients (a load tester's pool of connections):
 * an answer given during the drain says the connection ends with it, and an idle connection is
 * closed with a FIN, not a reset, so the client knows no request of its was lost.
 */
class Http1DrainIT {

  private static String post(String key, String body) {
    return "POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
        + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + key + "\r\nContent-Length: " + body.length()
        + "\r\n\r\n" + body;
  }

  /** One answer's head and body (Content-Length framed), read from a keep-alive connection. */
  private static String readAnswer(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    while (!head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
      int b = in.read();
      if (b < 0) {
        return head.toString(StandardCharsets.ISO_8859_1) + "<EOF>";
      }
      head.write(b);
    }
    String text = head.toString(StandardCharsets.ISO_8859_1);
    int length = 0;
    for (String line : text.split("\r\n")) {
      if (line.toLowerCase().startsWith("content-length:")) {
        length = Integer.parseInt(line.substring(15).trim());
      }
    }
    return text + new String(in.readNBytes(length), StandardCharsets.UTF_8);
  }

  /** What follows on the connection: "EOF" (a FIN), "RESET", or "OPEN" after 10 s. */
  private static String afterwards(Socket socket) throws IOException {
    socket.setSoTimeout(10_000);
    try {
      int b = socket.getInputStream().read();
      return b < 0 ? "EOF" : "more bytes";
    } catch (java.net.SocketTimeoutException e) {
      return "OPEN";
    } catch (java.net.SocketException e) {
      return "RESET (" + e.getMessage() + ")";
    }
  }

  @Test
  @DisplayName("during the drain a keep-alive connection's answer carries Connection: close and the connection then ends with a FIN; an idle one ends with a FIN")
  void keepAliveConnectionsDuringTheDrain() throws Exception {
    String slowKey = Http.newKey();
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx())) {
      TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_SLOW_MS", "1500", "IDEMGATE_API_INSTANCES", "1"));
      Thread stopping = new Thread(gateway::close, "sigterm");
      try (Socket busy = new Socket("127.0.0.1", gateway.apiPort()); Socket idle = new Socket("127.0.0.1", gateway.apiPort())) {
        busy.setSoTimeout(15_000);
        idle.setSoTimeout(15_000);
        String quick = Http.payment(1_000, "tok_visa").encode();
        idle.getOutputStream().write(post(Http.newKey(), quick).getBytes(StandardCharsets.UTF_8));
        assertThat(readAnswer(idle.getInputStream())).startsWith("HTTP/1.1 201 ");

        String slow = Http.payment(2_471, "tok_slow").encode();
        busy.getOutputStream().write(post(slowKey, slow).getBytes(StandardCharsets.UTF_8));
        for (int i = 0; i < 100 && !"PROCESSING".equals(state(db, slowKey)); i++) {
          Thread.sleep(20);
        }
        stopping.start(); // what SIGTERM does

        String answer = readAnswer(busy.getInputStream());
        assertThat(answer).startsWith("HTTP/1.1 201 ");
        String ending = afterwards(busy);
        String idleEnding = afterwards(idle);
        assertThat(answer).as("the answer given during the drain tells the client the connection ends (then: %s)", ending)
            .containsIgnoringCase("connection: close");
        assertThat(ending).as("the busy connection after its answer").isEqualTo("EOF");
        assertThat(idleEnding).as("the idle connection").isEqualTo("EOF");
      } finally {
        if (stopping.getState() == Thread.State.NEW) {
          gateway.close();
        }
        stopping.join(60_000);
      }
    }
  }

  @Test
  @DisplayName("during the drain a request pipelined behind an in-flight payment is left unserved, and the payment's answer says so with Connection: close")
  void pipelinedRequestDuringTheDrain() throws Exception {
    String slowKey = Http.newKey();
    String nextKey = Http.newKey();
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx())) {
      TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_SLOW_MS", "1500", "IDEMGATE_API_INSTANCES", "1"));
      Thread stopping = new Thread(gateway::close, "sigterm");
      try (Socket busy = new Socket("127.0.0.1", gateway.apiPort())) {
        busy.setSoTimeout(15_000);
        String slow = Http.payment(2_472, "tok_slow").encode();
        busy.getOutputStream().write(post(slowKey, slow).getBytes(StandardCharsets.UTF_8));
        for (int i = 0; i < 100 && !"PROCESSING".equals(state(db, slowKey)); i++) {
          Thread.sleep(20);
        }
        stopping.start(); // what SIGTERM does
        Thread.sleep(300);
        String quick = Http.payment(1_001, "tok_visa").encode();
        busy.getOutputStream().write(post(nextKey, quick).getBytes(StandardCharsets.UTF_8));
        Thread.sleep(3_000); // the slow answer has come, and whatever the gateway did after it
        String answer;
        try {
          answer = readAnswer(busy.getInputStream());
        } catch (java.net.SocketException e) {
          answer = "RESET (" + e.getMessage() + ")";
        }
        String next;
        try {
          next = answer.startsWith("RESET") ? "-" : readAnswer(busy.getInputStream());
        } catch (java.net.SocketException e) {
          next = "RESET (" + e.getMessage() + ")";
        }
        assertThat(answer).as("the in-flight payment's answer, which must say the request behind it will not be served")
            .startsWith("HTTP/1.1 201 ").containsIgnoringCase("connection: close");
        assertThat(next).as("the request pipelined behind it").isEqualTo("<EOF>");
        assertThat(state(db, nextKey)).as("the unanswered request was not claimed").isNull();
      } finally {
        if (stopping.getState() == Thread.State.NEW) {
          gateway.close();
        }
        stopping.join(60_000);
      }
    }
  }

  private static String state(TestDb db, String key) {
    return (String) db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        TestGateway.MERCHANT_A, key);
  }
}
