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
 * {@code ?limit=} of GET /admin/anomalies (rows per list: 50 when absent, at most 200), on the route
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
  @DisplayName("a limit past 200 gives 200 rows, however many digits it has; absent, 50")
  void largeLimitsGiveTheMost() throws Exception {
    assertThat(clientRows("")).isEqualTo(50);
    assertThat(clientRows("?limit=7")).isEqualTo(7);
    assertThat(clientRows("?limit=0")).isEqualTo(1);
    assertThat(clientRows("?limit=999")).isEqualTo(200);
    assertThat(clientRows("?limit=1000")).as("limit=1000").isEqualTo(200);
    assertThat(clientRows("?limit=99999999999999999999")).as("limit=99999999999999999999").isEqualTo(200);
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
