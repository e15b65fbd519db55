package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.ConfigLoader;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * {@code ?limit=} of GET /admin/anomalies (rows per list: 50 when absent, 1 to 200), on the route
 * alone. The monitor has 250 clients and no twin pairs, so the ledger is never asked.
 */
class AnomalyRoutesTest {
  private static Vertx vertx;
  private static HttpServer server;
  private static final HttpClient client = HttpClient.newHttpClient();

  @BeforeAll
  static void start() throws Exception {
    AnomalyMonitor monitor = new AnomalyMonitor(ConfigLoader.load(Optional.empty(), Map.of()), new SimpleMeterRegistry(),
        TwinRateJudge.Settings.defaults());
    for (int i = 0; i < 250; i++) {
      monitor.judge().record("m", "c" + i, false, i);
    }
    vertx = Vertx.vertx();
    Router router = Router.router(vertx);
    AnomalyRoutes.mount(router, monitor, null);
    server = vertx.createHttpServer().requestHandler(router).listen(0).toCompletionStage().toCompletableFuture()
        .get(10, TimeUnit.SECONDS);
  }

  @AfterAll
  static void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private static HttpResponse<String> get(String query) throws Exception {
    return client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.actualPort() + "/admin/anomalies"
        + query)).build(), HttpResponse.BodyHandlers.ofString());
  }

  private static int clientRows(String query) throws Exception {
    HttpResponse<String> reply = get(query);
    assertThat(reply.statusCode()).as(query).isEqualTo(200);
    return new JsonObject(reply.body()).getJsonArray("clients").size();
  }

  @Test
  @DisplayName("a limit from 1 to 200 gives that many rows, however it is written; absent, 50")
  void limitGivesThatManyRows() throws Exception {
    assertThat(clientRows("")).isEqualTo(50);
    assertThat(clientRows("?limit=7")).isEqualTo(7);
    assertThat(clientRows("?limit=1")).isEqualTo(1);
    assertThat(clientRows("?limit=200")).isEqualTo(200);
    assertThat(clientRows("?limit=000200")).as("limit=000200").isEqualTo(200);
  }

  @Test
  @DisplayName("a limit of 0 or past 200 is refused 400 naming the range, not brought into it without a word")
  void aLimitOutOfRangeIsRefused() throws Exception {
    for (String bad : new String[] {"0", "000", "201", "999", "1000", "99999999999999999999"}) {
      HttpResponse<String> reply = get("?limit=" + bad);
      assertThat(reply.statusCode()).as("limit=%s", bad).isEqualTo(400);
      JsonObject problem = new JsonObject(reply.body());
      assertThat(problem.getString("code")).isEqualTo("invalid_request");
      assertThat(problem.getString("detail")).as("limit=%s", bad).contains("limit", "1 to 200");
    }
  }

  @Test
  @DisplayName("a limit that is no whole number is refused 400 invalid_request, not taken for the default")
  void aLimitThatIsNoNumberIsRefused() throws Exception {
    for (String bad : new String[] {"", "-5", "ten", "1e3", "%2B5"}) {
      HttpResponse<String> reply = get("?limit=" + bad);
      assertThat(reply.statusCode()).as("limit=%s", bad).isEqualTo(400);
      assertThat(new JsonObject(reply.body()).getString("code")).isEqualTo("invalid_request");
    }
  }
}
