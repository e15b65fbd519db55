package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.Http2Settings;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientConnection;
import io.vertx.core.http.HttpConnectOptions;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.StreamResetException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * HTTP/2 clients that never let an answer through (a stream window of 0 never opened) hold no
 * gateway memory for long: their streams are reset, past a cap at once, else at the deadline.
 */
class UndeliveredAnswersIT {
  /**
   * Streams per connection below 200: a Vert.x client closes a connection on which it was sent 200
   * resets (its own rapid-reset guard), which would end those streams before the gateway does.
   */
  private static final int STREAMS = 190;

  private Vertx vertx;
  private final List<HttpClient> stuckClients = new ArrayList<>();

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
  }

  @AfterEach
  void stop() {
    stuckClients.forEach(HttpClient::close);
    Http.await(vertx.close());
  }

  /** What became of streams whose answers were never let through. */
  private record Stuck(int total, int headers, int reset, int resetAtOnce, double seconds, Map<String, Integer> others) {}

  /** {@code connections} connections of {@link #STREAMS} streams each, GET {@code path} with a window of 0. */
  private Stuck stuckStreams(int port, String path, int connections) {
    AtomicInteger headers = new AtomicInteger();
    AtomicInteger reset = new AtomicInteger();
    AtomicInteger resetAtOnce = new AtomicInteger();
    Map<String, Integer> others = new ConcurrentHashMap<>();
    List<Future<?>> streams = new ArrayList<>();
    long started = System.nanoTime();
    for (int c = 0; c < connections; c++) {
      // A window of 0 for every stream: the answers' headers come through, their bodies never.
      HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
          .setHttp2ClearTextUpgrade(false).setInitialSettings(new Http2Settings().setInitialWindowSize(0)));
      stuckClients.add(client);
      for (int s = 0; s < STREAMS; s++) {
        // "At once" is counted from this stream's own answer, not from the test's start: on a busy
        // machine the last of a few hundred answers can leave seconds after the first.
        long[] answeredAt = {Long.MAX_VALUE};
        streams.add(client.request(new RequestOptions().setMethod(HttpMethod.GET).setHost("127.0.0.1").setPort(port).setURI(path))
            .compose(request -> request.send()
                .compose(response -> {
                  answeredAt[0] = System.nanoTime();
                  headers.incrementAndGet();
                  return response.body();
                }))
            .onFailure(failure -> {
              if (failure instanceof StreamResetException) {
                reset.incrementAndGet();
                if (System.nanoTime() - answeredAt[0] < 2_000_000_000L) { // the deadline is 3 s after the answer
                  resetAtOnce.incrementAndGet();
                }
              } else {
                others.merge(failure.getClass().getSimpleName() + ": " + failure.getMessage(), 1, Integer::sum);
              }
            }));
      }
    }
    Http.await(Future.join(streams).otherwiseEmpty());
    return new Stuck(connections * STREAMS, headers.get(), reset.get(), resetAtOnce.get(),
        (System.nanoTime() - started) / 1e9, others);
  }

  @Test
  @DisplayName("API port: streams whose answers a client never takes (window 0) are reset, past the cap at once and the "
      + "rest at request_body_timeout, while other clients are served")
  void stuckAnswersAreReset() {
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REQUEST_BODY_TIMEOUT", "3s")); Http http = new Http()) {
      // No API key: answered 401 before anything else, as an attacker would be. 13 connections: more
      // than one verticle's cap of held streams on any split over two.
      Stuck stuck = stuckStreams(gateway.apiPort(), "/v1/payments/pay_none", 13);

      assertThat(stuck.headers()).as("every answer's headers came through").isEqualTo(stuck.total());
      assertThat(stuck.reset()).as("every stream was reset (after %.1f s; other failures %s)", stuck.seconds(), stuck.others())
          .isEqualTo(stuck.total());
      assertThat(stuck.resetAtOnce()).as("past the cap of held streams (%d per verticle), reset before the deadline",
          UndeliveredAnswers.API_MAX_HELD).isGreaterThanOrEqualTo(stuck.total() - 2 * UndeliveredAnswers.API_MAX_HELD);
      assertThat(stuck.seconds()).as("the last ones at request_body_timeout (3 s) and its sweep, not at the connection's end")
          .isLessThan(10);
      // A client that reads is served all along.
      assertThat(http.get(gateway.apiPort(), "/v1/payments/pay_none", TestGateway.KEY_A).status()).isEqualTo(404);
    }
  }

  @Test
  @DisplayName("API port: answers a busy client takes a moment late free their place in the cap once taken: more of them "
      + "than the cap, connection after connection, are all delivered, none reset")
  void answersTakenLateDoNotFillTheCap() {
    // One verticle, so that every connection counts against the same cap; deadlines far off, so that
    // only the cap can reset a stream here.
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_API_INSTANCES", "1",
        "IDEMGATE_REQUEST_BODY_TIMEOUT", "5m", "IDEMGATE_HTTP_IDLE_TIMEOUT", "10m"))) {
      int rounds = UndeliveredAnswers.API_MAX_HELD / STREAMS + 2;
      AtomicInteger delivered = new AtomicInteger();
      Map<String, Integer> failures = new ConcurrentHashMap<>();
      for (int round = 0; round < rounds; round++) {
        // A window of 0 until every answer's headers are in, then opened: what a client whose
        // connection window is spent for a moment (a burst of answers, a slow reader) does.
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
            .setHttp2ClearTextUpgrade(false).setInitialSettings(new Http2Settings().setInitialWindowSize(0)));
        HttpClientConnection connection = Http.await(((HttpClientAgent) client)
            .connect(new HttpConnectOptions().setHost("127.0.0.1").setPort(gateway.apiPort())));
        AtomicInteger answered = new AtomicInteger(); // headers in, or failed: nothing more to wait for before opening
        List<Future<?>> bodies = new ArrayList<>();
        for (int s = 0; s < STREAMS; s++) {
          bodies.add(connection.request(new RequestOptions().setMethod(HttpMethod.GET).setURI("/v1/payments/pay_none"))
              .compose(request -> request.send()
                  .compose(response -> {
                    answered.incrementAndGet();
                    return response.body();
                  }))
              .onSuccess(body -> delivered.incrementAndGet())
              .onFailure(failure -> {
                answered.incrementAndGet();
                failures.merge(failure.getClass().getSimpleName(), 1, Integer::sum);
              }));
        }
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (answered.get() < STREAMS && System.nanoTime() < deadline) {
          Thread.onSpinWait();
        }
        Http.await(connection.updateSettings(new Http2Settings().setInitialWindowSize(65_535)));
        Http.await(Future.join(bodies).otherwiseEmpty());
        Http.await(client.close());
      }
      assertThat(failures).as("streams reset or failed, of %d answers taken late", rounds * STREAMS).isEmpty();
      assertThat(delivered.get()).isEqualTo(rounds * STREAMS);
    }
  }

  @Test
  @DisplayName("management port: scrapes a client never takes are reset too, past its smaller cap at once, and the port still answers")
  void stuckScrapesAreReset() {
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REQUEST_BODY_TIMEOUT", "3s")); Http http = new Http()) {
      Stuck stuck = stuckStreams(gateway.managementPort(), "/metrics", 2);

      assertThat(stuck.reset()).as("every stream was reset (after %.1f s; other failures %s)", stuck.seconds(), stuck.others())
          .isEqualTo(stuck.total());
      assertThat(stuck.resetAtOnce()).as("past the cap of held streams (%d)", UndeliveredAnswers.MANAGEMENT_MAX_HELD)
          .isGreaterThanOrEqualTo(stuck.total() - UndeliveredAnswers.MANAGEMENT_MAX_HELD);
      assertThat(stuck.seconds()).isLessThan(10);
      assertThat(http.get(gateway.managementPort(), "/health/live", null).status()).isEqualTo(200);
    }
  }
}
