package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestGateway;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** Anomalies end to end through a gateway: detection under policy flag, the admin view, metrics and logs. */
class AnomalyIT {
  private static TestGateway gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start();
    http = new Http();
  }

  @AfterAll
  static void stop() {
    http.close();
    gateway.close();
  }

  private static Reply pay(String key, JsonObject body, String client) {
    return Http.await(http.payAsync(gateway.apiPort(), TestGateway.KEY_A, key, body.encode(), Map.of("X-Client-Id", client)));
  }

  private static JsonObject anomalies(String query) {
    Reply reply = http.get(gateway.managementPort(), "/admin/anomalies" + query, TestGateway.ADMIN_TOKEN);
    assertThat(reply.status()).isEqualTo(200);
    return reply.json();
  }

  private static JsonObject standing(JsonObject view, String client) {
    for (Object o : view.getJsonArray("clients")) {
      JsonObject s = (JsonObject) o;
      if (s.getString("client").equals(client)) {
        return s;
      }
    }
    return null;
  }

  @Test
  @DisplayName("under policy flag a twin under a new key is charged, counted, and shown by key hash, never by key")
  void twinIsFlaggedAndShown() {
    String client = "shop-" + UUID.randomUUID();
    JsonObject body = Orders.payment(4200, "tok_visa");
    String k1 = Http.newKey();
    String k2 = Http.newKey();
    Reply original = pay(k1, body, client);
    assertThat(original.status()).isEqualTo(201);
    assertThat(pay(k1, body, client).header("Idempotent-Replayed")).isEqualTo("true");
    Reply twin = pay(k2, body, client);
    assertThat(twin.status()).isEqualTo(201);

    Reply raw = http.get(gateway.managementPort(), "/admin/anomalies?merchant=" + TestGateway.MERCHANT_A + "&limit=200",
        TestGateway.ADMIN_TOKEN);
    assertThat(raw.body()).doesNotContain(k1).doesNotContain(k2).doesNotContain("tok_visa");
    JsonObject pair = raw.json().getJsonArray("recent_twins").stream().map(JsonObject.class::cast)
        .filter(p -> p.getString("client").equals(client)).findFirst().orElseThrow();
    assertThat(pair.getString("key_hash")).isEqualTo(PaymentTwins.keyHash(TestGateway.MERCHANT_A, new IdempotencyKey(k2)));
    assertThat(pair.getString("original_key_hash")).isEqualTo(PaymentTwins.keyHash(TestGateway.MERCHANT_A, new IdempotencyKey(k1)));
    assertThat(pair.getString("original_payment_id")).isEqualTo(original.json().getString("id"));
    assertThat(pair.getString("payment_id")).isEqualTo(twin.json().getString("id"));
    assertThat(pair.getString("outcome")).isEqualTo("flagged");
    // The replay of k1 was not a twin: one payment, one twin, whatever the retries.
    JsonObject standing = standing(raw.json(), client);
    assertThat(standing.getLong("payments")).isEqualTo(2);
    assertThat(standing.getLong("twins")).isEqualTo(1);
  }

  @Test
  @DisplayName("a client retrying with new keys 20% of the time is flagged (and logged) within 150 requests; "
      + "a client paying the same amount for different customers is not")
  void generatedTraffic() {
    try (CapturedLogs logs = CapturedLogs.of(AnomalyMonitor.class)) {
      String healthy = "healthy-" + UUID.randomUUID();
      String sloppy = "sloppy-" + UUID.randomUUID();
      // The merchant's norm: a client paying 1999 EUR again and again, each for another customer.
      for (int i = 0; i < 60; i++) {
        assertThat(pay(Http.newKey(), Orders.payment(1999, "tok_customer_" + i), healthy).status()).isEqualTo(201);
      }
      SplittableRandom random = new SplittableRandom(2024);
      JsonObject previous = null;
      int flaggedAt = -1;
      for (int i = 1; i <= 150 && flaggedAt < 0; i++) {
        boolean retryWithNewKey = previous != null && random.nextDouble() < 0.2;
        JsonObject body = retryWithNewKey ? previous : Orders.payment(1999, "tok_customer_" + random.nextInt(1_000_000));
        assertThat(pay(Http.newKey(), body, sloppy).status()).isEqualTo(201);
        previous = body;
        JsonObject s = standing(anomalies("?merchant=" + TestGateway.MERCHANT_A + "&limit=200"), sloppy);
        if (s != null && s.getBoolean("flagged")) {
          flaggedAt = i;
        }
      }
      System.out.println("sloppy client flagged after " + flaggedAt + " requests");
      assertThat(flaggedAt).as("requests until flagged").isBetween(31, 150);

      JsonObject view = anomalies("?merchant=" + TestGateway.MERCHANT_A + "&limit=200");
      List<String> flagged = new ArrayList<>();
      view.getJsonArray("flagged_clients").forEach(o -> flagged.add(((JsonObject) o).getString("client")));
      assertThat(flagged).contains(sloppy).doesNotContain(healthy);
      JsonObject s = standing(view, sloppy);
      assertThat(s.getDouble("recent_twin_rate")).isGreaterThan(s.getDouble("reference_rate"));
      assertThat(standing(view, healthy).getLong("twins")).isZero();

      ILoggingEvent event = logs.events().stream()
          .filter(e -> e.getKeyValuePairs() != null && e.getKeyValuePairs().stream()
              .anyMatch(kv -> kv.key.equals("client") && sloppy.equals(kv.value)))
          .findFirst().orElseThrow();
      assertThat(event.getKeyValuePairs()).anySatisfy(kv -> {
        assertThat(kv.key).isEqualTo("event");
        assertThat(kv.value).isEqualTo("anomaly.client_flagged");
      });
      assertThat(event.getFormattedMessage() + event.getKeyValuePairs()).doesNotContain("tok_customer");

      String metrics = http.get(gateway.managementPort(), "/metrics", null).body();
      assertThat(metrics).containsPattern("idemgate_anomaly_twins_total\\{outcome=\"flagged\",policy=\"flag\"} [1-9]");
      assertThat(metrics).containsPattern("(?m)^idemgate_anomaly_flagged_clients [1-9]");
      assertThat(metrics).containsPattern("idemgate_anomaly_client_flags_total [1-9]");
      assertThat(metrics).containsPattern("idemgate_anomaly_checks_total\\{result=\"first\"} [1-9]");
      assertThat(metrics.lines().filter(l -> l.startsWith("idemgate_anomaly")))
          .noneMatch(l -> l.contains("merchant") || l.contains(sloppy));
    }
  }

  @Test
  @DisplayName("a storefront that tries each declined card once more under a new key, as it should (nothing was "
      + "charged), is not flagged: those twins are payments, not twins held against it; charging a payment twice still is")
  void retriesOfDeclinedPaymentsAreNotHeldAgainstTheClient() {
    try (CapturedLogs logs = CapturedLogs.of(AnomalyMonitor.class)) {
      String storefront = "storefront-" + UUID.randomUUID();
      for (int i = 0; i < 20; i++) {
        assertThat(pay(Http.newKey(), Orders.payment(2900, "tok_customer_" + i), storefront).status()).isEqualTo(201);
        JsonObject declinedCard = Orders.payment(2900, "tok_decline");
        assertThat(pay(Http.newKey(), declinedCard, storefront).status()).isEqualTo(402);
        Http.await(http.vertx().timer(100)); // as a shopper would: not within the same millisecond
        assertThat(pay(Http.newKey(), declinedCard, storefront).status()).as("tried again: declined again").isEqualTo(402);
      }
      JsonObject view = anomalies("?merchant=" + TestGateway.MERCHANT_A + "&limit=200");
      JsonObject standing = standing(view, storefront);
      assertThat(standing.getBoolean("flagged")).as("flagged: " + standing.encode()).isFalse();
      assertThat(standing.getLong("twins")).as(standing.encode()).isZero();
      assertThat(standing.getLong("payments")).isEqualTo(60);
      assertThat(AnomalyViews.pairsOf(view, storefront)).hasSize(20)
          .allSatisfy(pair -> assertThat(pair.getString("outcome")).isEqualTo("allowed"));
      assertThat(logs.events()).noneMatch(e -> e.getKeyValuePairs() != null && e.getKeyValuePairs().stream()
          .anyMatch(kv -> kv.key.equals("client") && storefront.equals(kv.value)));

      JsonObject charged = Orders.payment(2900, "tok_visa");
      assertThat(pay(Http.newKey(), charged, storefront).status()).isEqualTo(201);
      assertThat(pay(Http.newKey(), charged, storefront).status()).isEqualTo(201);
      assertThat(standing(anomalies("?merchant=" + TestGateway.MERCHANT_A + "&limit=200"), storefront).getLong("twins"))
          .as("a twin of a charged payment").isEqualTo(1);
    }
  }

  @Test
  @DisplayName("the admin view is closed without the admin token")
  void adminViewNeedsToken() {
    assertThat(http.get(gateway.managementPort(), "/admin/anomalies", null).status()).isEqualTo(401);
    assertThat(http.get(gateway.managementPort(), "/admin/anomalies", "wrong").status()).isEqualTo(401);
    JsonObject view = anomalies("");
    assertThat(view.getString("policy")).isEqualTo("flag");
    assertThat(view.getLong("duplicate_window_seconds")).isEqualTo(600);
    assertThat(view.getJsonArray("duplicate_fields")).isEqualTo(new JsonArray(List.of("amount", "currency", "source", "merchant_reference")));
  }
}
