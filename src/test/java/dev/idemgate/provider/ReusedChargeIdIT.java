package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.support.Http;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * An acquirer that answers every charge with one and the same charge id (one that deduplicates by
 * card and amount, or by merchant reference, answers so for a second order). The gateway must not
 * tell the second order's client that it was paid: no money moved for it. Such a payment is left
 * pending for an operator, on the request path and when recovery asks the acquirer again.
 */
@DisplayName("an acquirer that answers a charge id that is already another payment's")
class ReusedChargeIdIT {
  /** A charge the acquirer never answers: its outcome is unknown, and recovery asks about it. */
  private static final String LOST = "tok_answer_lost";

  private static Vertx vertx;
  private static HttpServer acquirer;
  private static TestGateway gateway;
  private static Http http;
  private static TestDb db;
  /** The one charge id the acquirer answers, new for each test so that the tests share the database. */
  private static volatile String chargeId;
  /** The provider keys the acquirer was asked about (GET /charges). */
  private static final Set<String> inquired = ConcurrentHashMap.newKeySet();
  /**
   * The charge id each provider key was charged under, told again by an inquiry: a payment one test
   * left pending, asked about later, must not hear the next test's charge id.
   */
  private static final Map<String, String> charged = new ConcurrentHashMap<>();

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
    acquirer = Http.await(vertx.createHttpServer().requestHandler(request -> {
      if (request.method() == HttpMethod.GET) {
        String providerKey = request.getParam("idempotency_key");
        inquired.add(providerKey);
        String id = charged.get(providerKey);
        request.response().putHeader("Content-Type", "application/json").end(new JsonObject()
            .put("idempotency_key", providerKey).put("requests", id == null ? 0 : 1)
            .put("charges", id == null ? new JsonArray()
                : new JsonArray().add(new JsonObject().put("id", id).put("status", "succeeded")))
            .encode());
        return;
      }
      charged.putIfAbsent(request.getHeader("Idempotency-Key"), chargeId);
      request.body().onSuccess(body -> {
        JsonObject charge = body.toJsonObject();
        if (LOST.equals(charge.getString("source"))) {
          return; // never answered: the gateway's call times out
        }
        boolean decline = "tok_decline".equals(charge.getString("source"));
        request.response().putHeader("Content-Type", "application/json").end(new JsonObject()
            .put("id", charged.get(request.getHeader("Idempotency-Key")))
            .put("status", decline ? "declined" : "succeeded").put("decline_code", decline ? "card_declined" : null)
            .put("amount", charge.getLong("amount"))
            .put("currency", charge.getString("currency")).encode());
      });
    }).listen(0, "127.0.0.1"));
    gateway = TestGateway.start(Map.of("IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:" + acquirer.actualPort(), "IDEMGATE_PROVIDER_TIMEOUT", "1s",
        "IDEMGATE_LEASE", "3s", "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_RECOVERY_BACKOFF", "5s,300ms,600ms"));
    http = new Http();
    db = new TestDb(http.vertx());
  }

  @AfterAll
  static void stop() {
    if (db != null) {
      db.close();
    }
    if (http != null) {
      http.close();
    }
    if (gateway != null) {
      gateway.close();
    }
    if (vertx != null) {
      Http.await(vertx.close());
    }
  }

  @Test
  @DisplayName("a second payment answered with the first one's charge id gets 202 pending (and so does its replay), "
      + "not 201; the ledger holds one succeeded payment on that charge")
  void secondPaymentOnTheSameChargeIsPending() {
    chargeId = "ch_same_for_all_" + UUID.randomUUID();
    Http.Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(1999, "tok_visa"));
    assertThat(first.status()).as(first.body()).isEqualTo(201);
    assertThat(first.json().getString("provider_reference")).isEqualTo(chargeId);

    String key = Http.newKey();
    JsonObject body = Http.payment(1999, "tok_visa");
    Http.Reply second = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);
    assertThat(second.status()).as(second.body()).isEqualTo(202);
    assertThat(second.json().getString("status")).isEqualTo("pending");
    assertThat(second.json().getString("provider_reference")).isNull();
    // As for any pending payment: its first inquiry (5 s), a recovery_interval (0.2 s) and a second, rounded up.
    assertThat(second.header("Retry-After")).as("when to poll").isEqualTo("7");
    Http.Reply replay = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);
    assertThat(replay.status()).as(replay.body()).isEqualTo(202);
    assertThat(replay.json().getString("id")).isEqualTo(second.json().getString("id"));

    assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE provider_reference = $1 AND status = 'succeeded'",
        chargeId)).isEqualTo(1L);
    assertThat(db.scalar("SELECT status FROM idemgate.payments WHERE id = $1", second.json().getString("id")))
        .isEqualTo("pending");
    assertThat(db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE payment_id = $1", second.json().getString("id")))
        .isEqualTo("PENDING");
    assertThat(reused("request")).isPositive();
  }

  @Test
  @DisplayName("/admin/pending names, for a payment left pending on another payment's charge id, that charge id and "
      + "the payment holding it: what an operator's verdict needs")
  void pendingListNamesTheChargeAndItsHolder() {
    chargeId = "ch_same_for_all_" + UUID.randomUUID();
    Http.Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(1999, "tok_visa"));
    assertThat(first.status()).as(first.body()).isEqualTo(201);
    Http.Reply second = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(1999, "tok_visa"));
    assertThat(second.status()).as(second.body()).isEqualTo(202);

    JsonObject listed = listed(second.json().getString("id"));
    assertThat(listed.getJsonObject("charge_conflict")).as(listed.encode()).isEqualTo(new JsonObject()
        .put("provider_reference", chargeId).put("held_by_payment_id", first.json().getString("id")));
  }

  @Test
  @DisplayName("recovery that asks about a pending payment and hears the charge id of another payment keeps it pending; "
      + "/admin/pending names no charge for it while its outcome is merely unknown, then that charge id and its holder")
  void recoveryKeepsItPending() {
    chargeId = "ch_same_for_all_" + UUID.randomUUID();
    Http.Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(1999, "tok_visa"));
    assertThat(first.status()).as(first.body()).isEqualTo(201);

    String key = Http.newKey();
    JsonObject body = Http.payment(1999, LOST);
    Http.Reply lost = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);
    assertThat(lost.status()).as(lost.body()).isEqualTo(202);
    String paymentId = lost.json().getString("id");
    JsonObject unknown = listed(paymentId);
    assertThat(unknown.containsKey("charge_conflict")).as(unknown.encode()).isTrue();
    assertThat(unknown.getValue("charge_conflict")).as("an answer lost names no charge").isNull();
    // Recovery's first inquiry is 5 s after the answer was lost; brought forward.
    db.query("UPDATE idemgate.idempotency_keys SET next_inquiry_at = now() WHERE payment_id = $1", paymentId);
    String providerKey = ProviderKeys.of(TestGateway.MERCHANT_A, key);
    Waits.eventually(Duration.ofSeconds(10), () -> inquired.contains(providerKey), "recovery asked the acquirer");
    Waits.sleep(1_000); // its write follows the answer at once

    Http.Reply replay = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);
    assertThat(replay.status()).as(replay.body()).isEqualTo(202);
    assertThat(reused("recovery")).isPositive();
    assertThat(db.scalar("SELECT status FROM idemgate.payments WHERE id = $1", paymentId)).isEqualTo("pending");
    assertThat(db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE payment_id = $1", paymentId))
        .isEqualTo("PENDING");
    assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE provider_reference = $1", chargeId)).isEqualTo(1L);
    JsonObject listed = listed(paymentId);
    assertThat(listed.getJsonObject("charge_conflict")).as(listed.encode()).isEqualTo(new JsonObject()
        .put("provider_reference", chargeId).put("held_by_payment_id", first.json().getString("id")));
  }

  @Test
  @DisplayName("a succeeded charge under the id of a declined attempt (an acquirer whose ids name the order's attempts) "
      + "is recorded as charged: no money moved for the decline, so the id is no other payment's charge")
  void aDeclinedAttemptsIdIsNoCharge() {
    chargeId = "pi_attempts_of_one_order_" + UUID.randomUUID();
    Http.Reply declined = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(1999, "tok_decline"));
    assertThat(declined.status()).as(declined.body()).isEqualTo(402);
    assertThat(declined.json().getString("provider_reference")).isEqualTo(chargeId);

    Http.Reply paid = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(1999, "tok_visa"));
    assertThat(paid.status()).as(paid.body()).isEqualTo(201);
    assertThat(paid.json().getString("provider_reference")).isEqualTo(chargeId);
  }

  /** The payment's entry in /admin/pending, narrowed to it: the database may hold other runs' unresolved records. */
  private static JsonObject listed(String paymentId) {
    Http.Reply reply = http.get(gateway.managementPort(), "/admin/pending?payment_id=" + paymentId, TestGateway.ADMIN_TOKEN);
    assertThat(reply.status()).as(reply.body()).isEqualTo(200);
    JsonArray unresolved = reply.json().getJsonArray("unresolved");
    assertThat(unresolved.size()).as(reply.body()).isEqualTo(1);
    return unresolved.getJsonObject(0);
  }

  private static double reused(String path) {
    String scrape = http.get(gateway.managementPort(), "/metrics", null).body();
    return Scrape.value(scrape, "idemgate_provider_reference_reused_total{path=\"" + path + "\"}").orElse(0);
  }
}
