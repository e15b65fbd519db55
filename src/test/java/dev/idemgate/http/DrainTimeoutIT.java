package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.Idemgate;
import dev.idemgate.idempotency.Fingerprint;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A stop whose drain runs out (drain_timeout) with payments still at the provider. The server closes
 * their connections unanswered; before session 33 their access lines said 499 {@code client_closed},
 * as if the clients had hung up, and nothing in the log said the drain had cut anything.
 */
class DrainTimeoutIT {

  @Test
  @DisplayName("a drain that runs out: the request it cuts is logged 499 outcome shutdown (one whose client hung up stays "
      + "client_closed), one WARN names the payments cut, and their claims stand for recovery")
  void cutRequestsAreTheServersDoing() throws Exception {
    String kept = Http.newKey();
    String hungUp = Http.newKey();
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx());
        CapturedLogs access = CapturedLogs.of("idemgate.access"); CapturedLogs gatewayLog = CapturedLogs.of(Idemgate.class)) {
      TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_SLOW_MS", "20000", "IDEMGATE_DRAIN_TIMEOUT", "1s",
          "IDEMGATE_API_INSTANCES", "1"));
      try (Socket waiting = new Socket("127.0.0.1", gateway.apiPort()); Socket leaving = new Socket("127.0.0.1", gateway.apiPort())) {
        send(waiting, kept);
        send(leaving, hungUp);
        Waits.eventually(Duration.ofSeconds(10), () -> "PROCESSING".equals(state(db, kept)) && "PROCESSING".equals(state(db, hungUp)),
            "both payments claimed, now at the provider");
        leaving.close(); // this client hangs up before the stop
        Waits.eventually(Duration.ofSeconds(5), () -> accessLine(access, hungUp) != null, "the hung-up request's access line");

        gateway.close(); // what SIGTERM does: the drain runs out after 1 s, the charges take 20 s

        waiting.setSoTimeout(5_000);
        assertThat(readAll(waiting.getInputStream())).as("the cut request is closed without an answer").isEmpty();
      }
      assertThat(accessLine(access, kept)).as("the request the drain cut")
          .containsEntry("status", "499").containsEntry("outcome", "shutdown");
      assertThat(accessLine(access, hungUp)).as("the request whose client hung up")
          .containsEntry("status", "499").containsEntry("outcome", "client_closed");
      List<String> warnings = gatewayLog.events().stream().filter(e -> e.getLevel() == Level.WARN)
          .map(ILoggingEvent::getFormattedMessage).toList();
      assertThat(warnings).as("Idemgate's warnings").filteredOn(m -> m.contains("drain ran out")).singleElement().asString()
          .contains("2 payments still under way", "status 499, outcome shutdown", "recovery");
      assertThat(state(db, kept)).as("the cut payment's claim stands, for recovery to settle").isEqualTo("PROCESSING");
    }
  }

  private static void send(Socket socket, String key) throws IOException {
    String body = Http.payment(3_141, "tok_slow").encode();
    socket.getOutputStream().write(("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
        + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + key + "\r\nContent-Length: " + body.length()
        + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
    socket.getOutputStream().flush();
  }

  /** Everything the server sent until it closed the connection (a reset counts as a close). */
  private static String readAll(InputStream in) throws IOException {
    StringBuilder read = new StringBuilder();
    byte[] buffer = new byte[4096];
    try {
      for (int n; (n = in.read(buffer)) > 0; ) {
        read.append(new String(buffer, 0, n, StandardCharsets.ISO_8859_1));
      }
    } catch (java.net.SocketException reset) {
      // closed by a reset
    }
    return read.toString();
  }

  /** The fields of the access line of the request with {@code key}, or null if there is none yet. */
  private static Map<String, String> accessLine(CapturedLogs access, String key) {
    String keyHash = Fingerprint.sha256Hex(key).substring(0, 16);
    return access.events().stream()
        .filter(e -> e.getKeyValuePairs() != null)
        .map(e -> e.getKeyValuePairs().stream().filter(kv -> kv.value != null)
            .collect(Collectors.toMap(kv -> kv.key, kv -> String.valueOf(kv.value), (a, b) -> a)))
        .filter(fields -> keyHash.equals(fields.get("key_sha256")))
        .findFirst().orElse(null);
  }

  private static String state(TestDb db, String key) {
    return (String) db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        TestGateway.MERCHANT_A, key);
  }
}
