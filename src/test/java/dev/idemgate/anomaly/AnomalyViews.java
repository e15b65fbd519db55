package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestGateway;
import io.vertx.core.json.JsonObject;
import java.util.List;

/** What the twin tests read back from {@code /admin/anomalies}: merchant A's view, one client's standing and pairs. */
final class AnomalyViews {
  private AnomalyViews() {}

  static JsonObject anomalies(Http http, TestGateway at) {
    Reply reply = http.get(at.managementPort(), "/admin/anomalies?merchant=" + TestGateway.MERCHANT_A + "&limit=200",
        TestGateway.ADMIN_TOKEN);
    assertThat(reply.status()).isEqualTo(200);
    return reply.json();
  }

  static JsonObject standing(JsonObject view, String client) {
    return view.getJsonArray("clients").stream().map(JsonObject.class::cast)
        .filter(s -> s.getString("client").equals(client)).findFirst().orElseThrow();
  }

  static List<JsonObject> pairsOf(JsonObject view, String client) {
    return view.getJsonArray("recent_twins").stream().map(JsonObject.class::cast)
        .filter(pair -> pair.getString("client").equals(client)).toList();
  }

  /** One series of the gateway's Prometheus scrape, e.g. {@code name{tag="value"}}; 0 when absent. */
  static double meter(Http http, TestGateway at, String series) {
    return http.get(at.managementPort(), "/metrics", null).body().lines()
        .filter(line -> line.startsWith(series + " "))
        .mapToDouble(line -> Double.parseDouble(line.substring(series.length() + 1).trim()))
        .findFirst().orElse(0);
  }
}
