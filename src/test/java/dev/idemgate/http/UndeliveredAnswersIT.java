package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.Http2Settings;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.StreamResetException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * HTTP/2 clients that never let an answer through (a stream window of 0 never opened) hold no
 * gateway memory for long: their streams are reset, past a cap at once, else at the deadline.
 */
class UndeliveredAnswersIT {
  /**
   * Connections of 190 streams each, more than one verticle's cap of held streams on any split over
   * two: a Vert.x client closes a connection on which it was sent 200 resets (its own rapid-reset
   * guard), which would end those streams before the gateway does.
   */
  private static final int CONNECTIONS = 13;
  private static final int STREAMS = 190;

  @Test
  @DisplayName("streams whose answers a client never takes (window 0) are reset, past the cap at once and the rest at "
      + "request_body_timeout, while other clients are served")
  void stuckAnswersAreReset() {
    Vertx vertx = Vertx.vertx();
    List<HttpClient> stuckClients = new ArrayList<>();
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REQUEST_BODY_TIMEOUT", "3s")); Http http = new Http()) {
      AtomicInteger headers = new AtomicInteger();
      AtomicInteger reset = new AtomicInteger();
      AtomicInteger resetAtOnce = new AtomicInteger();
      Map<String, Integer> others = new java.util.concurrent.ConcurrentHashMap<>();
      List<Future<?>> streams = new ArrayList<>();
      long started = System.nanoTime();
      for (int c = 0; c < CONNECTIONS; c++) {
        // A window of 0 for every stream: the answers' headers come through, their bodies never.
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
            .setHttp2ClearTextUpgrade(false)
            .setInitialSettings(new Http2Settings().setInitialWindowSize(0)));
        stuckClients.add(client);
        for (int s = 0; s < STREAMS; s++) {
          // No API key: answered 401 before anything else, as an attacker would be.
          streams.add(client.request(new RequestOptions().setMethod(HttpMethod.GET).setHost("127.0.0.1")
                  .setPort(gateway.apiPort()).setURI("/v1/payments/pay_none"))
              .compose(request -> request.send())
              .compose(response -> {
                headers.incrementAndGet();
                return response.body();
              })
              .onFailure(failure -> {
                if (failure instanceof StreamResetException) {
                  reset.incrementAndGet();
                  if (System.nanoTime() - started < 2_000_000_000L) {
                    resetAtOnce.incrementAndGet();
                  }
                } else {
                  others.merge(failure.getClass().getSimpleName() + ": " + failure.getMessage(), 1, Integer::sum);
                }
              }));
        }
      }
      int total = CONNECTIONS * STREAMS;
      Http.await(Future.join(streams).otherwiseEmpty());
      double seconds = (System.nanoTime() - started) / 1e9;

      assertThat(headers.get()).as("every answer's headers came through").isEqualTo(total);
      assertThat(reset.get()).as("every stream was reset (after %.1f s; other failures %s)", seconds, others).isEqualTo(total);
      assertThat(resetAtOnce.get()).as("past the cap of held streams (%d per verticle), reset before the deadline",
          UndeliveredAnswers.MAX_HELD).isGreaterThanOrEqualTo(CONNECTIONS * STREAMS - 2 * UndeliveredAnswers.MAX_HELD);
      assertThat(seconds).as("the last ones at request_body_timeout (3 s) and its sweep, not at the connection's end")
          .isLessThan(10);
      // A client that reads is served all along.
      assertThat(http.get(gateway.apiPort(), "/v1/payments/pay_none", TestGateway.KEY_A).status()).isEqualTo(404);
    } finally {
      stuckClients.forEach(HttpClient::close);
      Http.await(vertx.close());
    }
  }
}
