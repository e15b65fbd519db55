package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.RawHttp2;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A stopping gateway tells its HTTP/2 clients with GOAWAY. A client that sent a POST before that
 * GOAWAY reached it sends the POST's body next. When the GOAWAY named the last stream the gateway
 * had seen, the POST was refused (REFUSED_STREAM) and its body then ended the whole connection
 * (Netty treats DATA on a stream it refused as a connection error), and with it the answers of that
 * connection's payments still at the provider (session 26's probe: 17–43 answers lost in 3 of 5
 * rolling stops). Found through a Node client behind a proxy; here a raw client sends the frames
 * in the order the race produces.
 */
class Http2StopIT {

  @Test
  @DisplayName("a POST sent as the gateway stops, before its GOAWAY arrived, costs no other stream of the connection its answer")
  void postRacingTheGoAwayLosesNoAnswer() throws Exception {
    String slowKey = Http.newKey();
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx())) {
      TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_SLOW_MS", "1500"));
      Thread stopping = new Thread(gateway::close, "sigterm");
      try (RawHttp2 client = RawHttp2.connect(gateway.apiPort())) {
        String slow = Http.payment(2_468, "tok_slow").encode();
        client.postHeaders(1, "/pay", headers(slowKey, slow));
        client.data(1, slow);
        awaitState(db, slowKey, "PROCESSING");

        stopping.start(); // what SIGTERM does
        client.await(line -> line.startsWith("GOAWAY"), Duration.ofSeconds(5));
        // Sent before this client read the GOAWAY: its headers, then its body.
        String quick = Http.payment(1_357, "tok_visa").encode();
        client.postHeaders(3, "/pay", headers(Http.newKey(), quick));
        client.data(3, quick);
        client.answerPings(); // the client reads on, and sees the GOAWAY

        awaitBothAnswers(client);
        assertThat(client.events()).as("the slow payment's answer arrived, the connection was not ended for stream 3")
            .contains("HEADERS 1 :status=201")
            .noneMatch(line -> line.startsWith("GOAWAY") && !line.endsWith("error=0"));
        assertThat(client.events()).as("the POST sent before the client saw the GOAWAY was served, not refused")
            .contains("HEADERS 3 :status=201");
      } finally {
        if (!stopping.isAlive() && stopping.getState() == Thread.State.NEW) {
          gateway.close();
        }
        stopping.join(60_000);
      }
    }
  }

  @Test
  @DisplayName("a connection whose first POST arrives while the stop waits for PING answers is told the same way, and loses no answer")
  void connectionFirstSeenDuringTheNoticeLosesNoAnswer() throws Exception {
    String firstSlowKey = Http.newKey();
    String lateSlowKey = Http.newKey();
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx())) {
      // One API verticle: with one per core the late connection could land on an instance that had no
      // HTTP/2 connection, whose notice has nothing to wait for and whose server shuts down at once.
      TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_SLOW_MS", "1500", "IDEMGATE_API_INSTANCES", "1"));
      Thread stopping = new Thread(gateway::close, "sigterm");
      try (RawHttp2 silent = RawHttp2.connect(gateway.apiPort()); RawHttp2 late = RawHttp2.connect(gateway.apiPort())) {
        // A client that never answers PINGs holds the stop in its bounded wait (ShutdownNotice.BOUND_MILLIS).
        String first = Http.payment(2_469, "tok_slow").encode();
        silent.postHeaders(1, "/pay", headers(firstSlowKey, first));
        silent.data(1, first);
        awaitState(db, firstSlowKey, "PROCESSING");
        stopping.start(); // what SIGTERM does
        silent.await(line -> line.startsWith("GOAWAY"), Duration.ofSeconds(5));

        // Within that wait, a connection sends its first payment, then races a second one against the GOAWAY.
        String slow = Http.payment(2_470, "tok_slow").encode();
        late.postHeaders(1, "/pay", headers(lateSlowKey, slow));
        late.data(1, slow);
        String told = late.await(line -> line.startsWith("GOAWAY"), Duration.ofSeconds(5));
        assertThat(told).as("the first GOAWAY refuses no stream").isEqualTo("GOAWAY last=2147483647 error=0");
        String quick = Http.payment(1_358, "tok_visa").encode();
        late.postHeaders(3, "/pay", headers(Http.newKey(), quick));
        late.data(3, quick);
        late.answerPings();

        awaitBothAnswers(late);
        assertThat(late.events()).as("the late connection's slow payment was answered, its connection not ended")
            .contains("HEADERS 1 :status=201")
            .noneMatch(line -> line.startsWith("GOAWAY") && !line.endsWith("error=0"));
        assertThat(late.events()).as("its racing POST was served").contains("HEADERS 3 :status=201");
      } finally {
        if (!stopping.isAlive() && stopping.getState() == Thread.State.NEW) {
          gateway.close();
        }
        stopping.join(60_000);
      }
    }
  }

  /*
   * Each stream's answer awaited on its own: the quick payment (stream 3) usually answers before the
   * slow one (stream 1, 1.5 s at the provider), but nothing orders them, and on a busy machine it can
   * come after. Awaiting stream 1 alone would then read the events before stream 3's HEADERS. An EOF
   * ends both waits: the connection is over, and the assertions say what it lost.
   */
  private static void awaitBothAnswers(RawHttp2 client) throws InterruptedException {
    client.await(line -> line.startsWith("HEADERS 1") || line.equals("EOF"), Duration.ofSeconds(10));
    client.await(line -> line.startsWith("HEADERS 3") || line.equals("EOF"), Duration.ofSeconds(10));
  }

  private static void awaitState(TestDb db, String key, String expected) throws InterruptedException {
    for (int i = 0; i < 100 && !expected.equals(state(db, key)); i++) {
      Thread.sleep(20);
    }
    assertThat(state(db, key)).as("claimed, now at the provider").isEqualTo(expected);
  }

  private static Map<String, String> headers(String key, String body) {
    return Map.of("authorization", "Bearer " + KEY_A, "content-type", "application/json", "idempotency-key", key,
        "content-length", String.valueOf(body.length()));
  }

  private static String state(TestDb db, String key) {
    return (String) db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        TestGateway.MERCHANT_A, key);
  }
}
