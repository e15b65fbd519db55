package dev.idemgate.http;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.json.JsonObject;

/** Reads the simulator's charge log through the admin endpoint, as an operator would. */
final class SimulatorLog {
  private SimulatorLog() {}

  static JsonObject log(Http http, TestGateway gateway, String merchant, String key) {
    Http.Reply reply = http.get(gateway.managementPort(),
        "/admin/simulator/charges?merchant=" + merchant + "&key=" + java.net.URLEncoder.encode(key, java.nio.charset.StandardCharsets.UTF_8),
        TestGateway.ADMIN_TOKEN);
    if (reply.status() != 200) {
      throw new AssertionError("charge log unavailable: " + reply.status() + " " + reply.body());
    }
    return reply.json();
  }

  /** How many charges the simulator made for a merchant's key. */
  static int charges(Http http, TestGateway gateway, String merchant, String key) {
    return log(http, gateway, merchant, key).getJsonArray("charges").size();
  }
}
