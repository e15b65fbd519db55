package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
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
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * HTTP/2 clients that never let an answer through (a stream window of 0 never opened) hold no
 * gateway memory for long: their streams are reset, past a cap at once, else at the deadline.
 *
 * <p>The cap and the deadline are tested apart. With a deadline of a few seconds, a loaded machine
 * can take longer than the deadline to answer a few hundred streams (380 scrapes took 9 s on two
 * busy cores): the first streams held are reset at their deadline and make room for more, as they
 * should, and a count of "reset soon after the answer" fell short of "all but the cap". So the cap
 * is tested with a deadline that no run reaches, where any reset is the cap's and the test waits
 * for the count itself; the deadline with fewer streams than the cap, each reset timed from its own
 * request.
 */
class UndeliveredAnswersIT {
  /**
   * Streams per connection below 200: a Vert.x client closes a connection on which it was sent 200
   * resets (its own rapid-reset guard), which would end those streams before the gateway does.
   */
  private static final int STREAMS = 190;
  /** Streams for a deadline test: fewer than either cap, so that every one is held until its deadline. */
  private static final int FEW = 16;
  private static final Duration DEADLINE = Duration.ofSeconds(3);
  /**
   * How late after its deadline a held stream may be reset: the sweep comes at most a tenth of the
   * deadline later, the rest is room for a loaded machine. Far below the connection's own end (the
   * management port's idle timeout of 60 s, the API port's of 120 s), which is what it tells apart.
   */
  private static final Duration LATE = Duration.ofSeconds(10);
  /**
   * How long the resets past a cap may take to come in, all answers included, on a loaded machine.
   * Below the management port's longest deadline (30 s), so that no deadline can have passed by then.
   */
  private static final Duration PAST_THE_CAP_WITHIN = Duration.ofMillis(ManagementVerticle.MAX_BODY_TIMEOUT_MS).minusSeconds(5);

  private Vertx vertx;
  private final List<HttpClient> stuckClients = new ArrayList<>();

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
  }

  @AfterEach
  void stop() {
    letGo();
    Http.await(vertx.close());
  }

  /** Closes the stuck clients: before a gateway stops, whose drain would otherwise wait on their held streams. */
  private void letGo() {
    stuckClients.forEach(client -> Http.await(client.close()));
    stuckClients.clear();
  }

  /** Streams whose answers are never let through, and what the client has seen of them so far. */
  private static final class Stuck {
    final int total;
    final AtomicInteger headers = new AtomicInteger();
    final AtomicInteger reset = new AtomicInteger();
    final AtomicInteger ended = new AtomicInteger();
    final Map<String, Integer> others = new ConcurrentHashMap<>();
    /** Each reset stream's time from just before its request was sent to its reset. */
    final Queue<Duration> resetAfter = new ConcurrentLinkedQueue<>();

    Stuck(int total) {
      this.total = total;
    }

    @Override
    public String toString() {
      return "of " + total + " streams, " + headers + " answered, " + reset + " reset, other outcomes " + others;
    }
  }

  /**
   * Opens {@code connections} connections of {@code streams} streams each, GET {@code path} with a
   * window of 0, and returns at once: the caller waits for what it expects.
   */
  private Stuck openStuckStreams(int port, String path, int connections, int streams) {
    Stuck stuck = new Stuck(connections * streams);
    for (int c = 0; c < connections; c++) {
      // A window of 0 for every stream: the answers' headers come through, their bodies never.
      HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
          .setHttp2ClearTextUpgrade(false).setInitialSettings(new Http2Settings().setInitialWindowSize(0)));
      stuckClients.add(client);
      for (int s = 0; s < streams; s++) {
        // Before the request goes: the gateway cannot answer it sooner, nor start its deadline.
        long sent = System.nanoTime();
        client.request(new RequestOptions().setMethod(HttpMethod.GET).setHost("127.0.0.1").setPort(port).setURI(path))
            .compose(request -> request.send()
                .compose(response -> {
                  stuck.headers.incrementAndGet();
                  return response.body();
                }))
            .onComplete(outcome -> {
              if (outcome.failed() && outcome.cause() instanceof StreamResetException) {
                stuck.resetAfter.add(Duration.ofNanos(System.nanoTime() - sent));
                stuck.reset.incrementAndGet();
              } else {
                String what = outcome.succeeded() ? "body delivered" : outcome.cause().getClass().getSimpleName() + ": "
                    + outcome.cause().getMessage();
                stuck.others.merge(what, 1, Integer::sum);
              }
              stuck.ended.incrementAndGet();
            });
      }
    }
    return stuck;
  }

  /**
   * Waits for every stream to end, then checks that each was reset at its deadline: not before it
   * (counted from before the request went, so never sooner on any machine), and not long after.
   */
  private static void assertResetAtTheDeadline(Stuck stuck) {
    Waits.eventually(DEADLINE.plus(LATE).plus(LATE), () -> stuck.ended.get() == stuck.total,
        () -> "every stream reset, " + stuck);
    assertThat(stuck.headers.get()).as("every answer's headers came through").isEqualTo(stuck.total);
    assertThat(stuck.reset.get()).as("every stream was reset, %s", stuck).isEqualTo(stuck.total);
    assertThat(stuck.resetAfter).as("each stream's reset after its request: at request_body_timeout (%s) and its sweep, "
        + "not before, and not at the connection's end", DEADLINE).allSatisfy(after -> assertThat(after)
            .isBetween(DEADLINE, DEADLINE.plus(LATE)));
  }

  @Test
  @DisplayName("API port: streams whose answers a client never takes (window 0) are reset at request_body_timeout, "
      + "not before it and not at the connection's end, and other clients are served")
  void stuckAnswersAreReset() {
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REQUEST_BODY_TIMEOUT", DEADLINE.toMillis() + "ms"));
        Http http = new Http()) {
      // No API key: answered 401 before anything else, as an attacker would be.
      Stuck stuck = openStuckStreams(gateway.apiPort(), "/v1/payments/pay_none", 2, FEW);

      assertResetAtTheDeadline(stuck);
      assertThat(http.get(gateway.apiPort(), "/v1/payments/pay_none", TestGateway.KEY_A).status()).isEqualTo(404);
    }
  }

  @Test
  @DisplayName("API port: past the cap of held streams (per verticle), answers a client never takes are reset at once, "
      + "long before request_body_timeout, while other clients are served")
  void stuckAnswersPastTheCapAreResetAtOnce() {
    // A deadline no run reaches: every reset seen is the cap's.
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REQUEST_BODY_TIMEOUT", "5m",
        "IDEMGATE_HTTP_IDLE_TIMEOUT", "10m")); Http http = new Http()) {
      // 13 connections: more than one verticle's cap of held streams on any split over two.
      Stuck stuck = openStuckStreams(gateway.apiPort(), "/v1/payments/pay_none", 13, STREAMS);
      int pastTheCaps = stuck.total - 2 * UndeliveredAnswers.API_MAX_HELD;

      Waits.eventually(PAST_THE_CAP_WITHIN, () -> stuck.headers.get() == stuck.total && stuck.reset.get() >= pastTheCaps,
          () -> "every answer's headers in and at least the " + pastTheCaps + " streams past two verticles' caps of "
              + UndeliveredAnswers.API_MAX_HELD + " reset, " + stuck);
      assertThat(stuck.reset.get()).as("streams reset: a verticle with more streams than its cap still holds its cap, %s", stuck)
          .isLessThanOrEqualTo(stuck.total - UndeliveredAnswers.API_MAX_HELD);
      assertThat(stuck.others).as("other outcomes").isEmpty();
      // A client that reads is served while the gateway holds its caps.
      assertThat(http.get(gateway.apiPort(), "/v1/payments/pay_none", TestGateway.KEY_A).status()).isEqualTo(404);
      letGo();
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
        // Polled, not spun: a spinning test thread takes one of two cores from the gateway it waits for.
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (answered.get() < STREAMS && System.nanoTime() < deadline) {
          Waits.sleep(5);
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
  @DisplayName("management port: scrapes a client never takes are reset too, at request_body_timeout, not before it and "
      + "not at the connection's end, and the port still answers")
  void stuckScrapesAreReset() {
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REQUEST_BODY_TIMEOUT", DEADLINE.toMillis() + "ms"));
        Http http = new Http()) {
      Stuck stuck = openStuckStreams(gateway.managementPort(), "/metrics", 2, FEW);

      assertResetAtTheDeadline(stuck);
      assertThat(http.get(gateway.managementPort(), "/health/live", null).status()).isEqualTo(200);
    }
  }

  @Test
  @DisplayName("management port: past its smaller cap of held streams, scrapes a client never takes are reset at once, "
      + "long before request_body_timeout, and the port still answers")
  void stuckScrapesPastTheCapAreResetAtOnce() {
    // The management port's longest deadline (30 s), which no run reaches: every reset seen is the cap's.
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REQUEST_BODY_TIMEOUT",
        ManagementVerticle.MAX_BODY_TIMEOUT_MS + "ms")); Http http = new Http()) {
      // Fewer streams on each connection than the cap, more on all of them: the cap is the port's,
      // not a connection's. A scrape is costly to answer (160 took 10 s on two busy cores), so no
      // more of them than that.
      Stuck stuck = openStuckStreams(gateway.managementPort(), "/metrics", 5, 20);
      int pastTheCap = stuck.total - UndeliveredAnswers.MANAGEMENT_MAX_HELD;

      Waits.eventually(PAST_THE_CAP_WITHIN, () -> stuck.headers.get() == stuck.total && stuck.reset.get() >= pastTheCap,
          () -> "every answer's headers in and the " + pastTheCap + " streams past the cap of "
              + UndeliveredAnswers.MANAGEMENT_MAX_HELD + " reset, " + stuck);
      assertThat(stuck.reset.get()).as("streams reset: the cap's worth still held, %s", stuck).isEqualTo(pastTheCap);
      assertThat(stuck.others).as("other outcomes").isEmpty();
      assertThat(http.get(gateway.managementPort(), "/health/live", null).status()).isEqualTo(200);
      letGo();
    }
  }
}
