package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestGateway;
import io.vertx.core.json.JsonObject;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** Two gateway instances on one Redis judge a client on all of its traffic, whichever served it. */
class SharedJudgeIT {
  private static JsonObject standing(Http http, TestGateway gateway, String client) {
    Reply reply = http.get(gateway.managementPort(), "/admin/anomalies?merchant=" + TestGateway.MERCHANT_A + "&limit=200",
        TestGateway.ADMIN_TOKEN);
    assertThat(reply.json().getString("scope")).isEqualTo("shared");
    return reply.json().getJsonArray("clients").stream().map(JsonObject.class::cast)
        .filter(s -> s.getString("client").equals(client)).findFirst().orElse(null);
  }

  @Test
  @DisplayName("a client making twins through instance A is flagged by instance B too, within a few seconds")
  void otherInstanceLearns() throws InterruptedException {
    try (TestGateway a = TestGateway.start(); TestGateway b = TestGateway.start(); Http http = new Http()) {
      String sloppy = "sloppy-" + UUID.randomUUID();
      SplittableRandom random = new SplittableRandom(99);
      JsonObject previous = null;
      for (int i = 0; i < 120; i++) {
        JsonObject body = previous != null && random.nextDouble() < 0.2 ? previous : Orders.payment(1999, "tok_visa");
        Reply reply = Http.await(http.payAsync(a.apiPort(), TestGateway.KEY_A, Http.newKey(), body.encode(),
            Map.of("X-Client-Id", sloppy)));
        assertThat(reply.status()).isEqualTo(201);
        previous = body;
      }
      assertThat(standing(http, a, sloppy).getBoolean("flagged")).isTrue();
      JsonObject atB = null;
      for (int wait = 0; wait < 50 && (atB == null || atB.getLong("payments") < 120); wait++) {
        Thread.sleep(100);
        atB = standing(http, b, sloppy);
      }
      assertThat(atB).as("instance B learned of the client from A").isNotNull();
      assertThat(atB.getLong("payments")).isEqualTo(120);
      assertThat(atB.getBoolean("flagged")).isTrue();
    }
  }
}
