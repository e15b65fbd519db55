package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.reconciliation.ReconciliationSettings;
import dev.idemgate.recovery.RecoveryVerticle;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.Message;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The body deadline of the management port over h2c (prior knowledge): a stream whose HEADERS frame
 * ended it has no body to wait for and gets no deadline; one whose body stops half way gets 408.
 * The management verticle runs alone here, so that the test answers {@code /admin/pending} itself,
 * as late as it likes, in place of the recovery verticle.
 */
class AdminHttp2BodyDeadlineIT {
  /*
   * Long enough for a busy machine: the GET test must read the awaited bodies before a deadline armed
   * for it would have fired, and the verdict test must see its body awaited before the 408 ends the
   * wait. With 1 s either could miss on two loaded cores; the length itself is not what these tests check.
   */
  private static final long BODY_TIMEOUT_MS = 3_000;
  private static Vertx vertx;
  private static ManagementVerticle management;
  private static int port;
  private static HttpClient client;

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
    var config = TestGateway.config(Map.of("IDEMGATE_REQUEST_BODY_TIMEOUT", BODY_TIMEOUT_MS + "ms"));
    port = config.managementPort();
    management = new ManagementVerticle(config, ReconciliationSettings.load(Optional.empty(), Map.of()), Optional.empty(), new SimpleMeterRegistry(), new ReadinessState(),
        dev.idemgate.auth.CredentialScanner.NONE);
    Http.await(vertx.deployVerticle(management));
    client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
        .setHttp2ClearTextUpgrade(false));
    // Opens the client's connection and loads the admin routes, both sides: the tests time their
    // requests, and on two loaded cores the first request over h2c took 2.8 s of the 3 s deadline.
    int refused = Http.await(client.request(admin(HttpMethod.GET, "/admin/pending?limit=0"))
        .compose(request -> request.send()).map(response -> response.statusCode()));
    assertThat(refused).as("a limit of 0, refused before recovery is asked").isEqualTo(400);
  }

  @AfterAll
  static void stop() {
    Http.await(vertx.close());
  }

  private static RequestOptions admin(HttpMethod method, String path) {
    return new RequestOptions().setMethod(method).setHost("127.0.0.1").setPort(port).setURI(path)
        .addHeader("Authorization", "Bearer " + TestGateway.ADMIN_TOKEN);
  }

  @Test
  @DisplayName("h2c: an admin GET (END_STREAM on its HEADERS frame) gets no body deadline, and one answered well "
      + "after request_body_timeout gets its 200, not 408")
  void adminGetGetsNoBodyDeadline() {
    Promise<Message<JsonObject>> reached = Promise.promise();
    var recovery = vertx.eventBus().<JsonObject>consumer(RecoveryVerticle.UNRESOLVED, reached::tryComplete);
    Http.await(recovery.completion());
    try {
      long sent = System.nanoTime();
      var status = client.request(admin(HttpMethod.GET, "/admin/pending"))
          .compose(request -> request.send())
          .map(response -> response.statusCode());
      Message<JsonObject> held = Http.await(reached.future());
      // Read at once, well within the deadline: a deadline armed for this GET would still be in the list.
      int awaited = Http.await(management.bodiesAwaited());
      assertThat((System.nanoTime() - sent) / 1_000_000).as("read before the deadline").isLessThan(BODY_TIMEOUT_MS);
      assertThat(awaited).as("admin requests waiting for their body").isZero();

      Waits.sleep(BODY_TIMEOUT_MS + 500); // past the deadline and the sweep after it, had there been one
      held.reply(new JsonObject().put("unresolved", new JsonArray()).put("more", false));
      assertThat(Http.await(status)).isEqualTo(200);
    } finally {
      Http.await(recovery.unregister());
    }
  }

  @Test
  @DisplayName("h2c: an admin verdict whose body stops half way (no END_STREAM) gets 408 after request_body_timeout")
  void adminBodyStopsHalfWay() {
    String path = "/admin/pending/pay_" + UUID.randomUUID().toString().replace("-", "") + "/resolve";
    Promise<Integer> status = Promise.promise();
    HttpClientRequest request = Http.await(client.request(admin(HttpMethod.POST, path)
        .addHeader("Content-Type", "application/json")));
    request.setChunked(true).exceptionHandler(e -> { }); // the stream is reset after the 408
    request.response().onSuccess(response -> status.tryComplete(response.statusCode()));
    long sent = System.nanoTime();
    Http.await(request.write("{\"outcome\""));
    Waits.eventually(Duration.ofSeconds(5), () -> Http.await(management.bodiesAwaited()) == 1,
        "the verdict waits for its body");

    assertThat(Http.await(status.future())).isEqualTo(408);
    assertThat((System.nanoTime() - sent) / 1_000_000).as("ms until the 408: the deadline, never sooner")
        .isGreaterThanOrEqualTo(BODY_TIMEOUT_MS).isLessThan(BODY_TIMEOUT_MS + Waits.LATE_MS);
    assertThat(Http.await(management.bodiesAwaited())).isZero();
  }
}
