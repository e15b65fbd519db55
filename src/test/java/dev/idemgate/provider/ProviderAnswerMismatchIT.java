package dev.idemgate.provider;

import static dev.idemgate.support.Waits.sleep;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayPostgres;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The acquirer answers a charge with a charge of another amount or currency than the one asked (a
 * partial approval, or an earlier charge it returns for the provider key). A deduplicating acquirer
 * that already holds a charge under the payment's provider key answers that way; the gateway must not
 * tell its client that the payment it asked for succeeded, neither on the request path nor when
 * recovery asks again. An operator closes such a payment as declined, without waiting out
 * provider_key_retention, and the key is never freed.
 *
 * <p>The gateway has a PostgreSQL of its own, as in {@link ProviderFaultFixture}.
 */
@DisplayName("an acquirer's answer about another amount or currency")
class ProviderAnswerMismatchIT {
  private static ThrowawayPostgres pg;
  private static Vertx vertx;
  private static AcquirerServer acquirer;
  private static TestGateway gateway;
  private static Http http;
  private static TestDb db;

  @BeforeAll
  static void start() {
    pg = ThrowawayPostgres.start();
    vertx = Vertx.vertx();
    acquirer = new AcquirerServer(0, 0, 0, true);
    Http.await(vertx.deployVerticle(acquirer));
    gateway = TestGateway.start(Map.of("IDEMGATE_PG_URL", pg.url(), "IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:" + acquirer.actualPort(), "IDEMGATE_PROVIDER_TIMEOUT", "2s",
        "IDEMGATE_LEASE", "5s", "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_RECOVERY_BACKOFF", "5s,300ms,600ms"));
    http = new Http();
    db = new TestDb(http.vertx(), pg.url());
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
    if (pg != null) {
      pg.close();
    }
  }

  @Test
  @DisplayName("an operator closes it as declined (having reversed that charge at the acquirer) without waiting out "
      + "provider_key_retention: retries replay 402 with the operator's decline code, the key is never freed and nothing "
      + "more is charged; succeeded and not_charged are refused (409)")
  void operatorClosesAPartialApprovalAsDeclined() {
    String key = Http.newKey();
    String providerKey = ProviderKeys.of(TestGateway.MERCHANT_A, key);
    String partial = chargeAtTheAcquirer(providerKey, 3000, "EUR");
    JsonObject body = Http.payment(5000, "tok_visa");
    Http.Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);
    assertThat(first.status()).as(first.body()).isEqualTo(202);
    String paymentId = first.json().getString("id");
    // Claimed a minute ago: past its late-charge window (lease 5 s + 2 x 2 s), well within
    // provider_key_retention (24 h). Recovery's next look an hour away, out of the verdicts' way.
    db.query("UPDATE idemgate.idempotency_keys SET created_at = now() - interval '1 minute', "
        + "next_inquiry_at = now() + interval '1 hour' WHERE payment_id = $1 AND state = 'PENDING'", paymentId);

    Http.Reply notCharged = settle(paymentId, "{\"outcome\":\"not_charged\"}");
    Http.Reply succeeded = settle(paymentId, "{\"outcome\":\"succeeded\",\"provider_reference\":\"" + partial + "\"}");
    assertThat(notCharged.status()).as(notCharged.body()).isEqualTo(409);
    assertThat(succeeded.status()).as(succeeded.body()).isEqualTo(409);
    Http.Reply declined = settle(paymentId, "{\"outcome\":\"declined\",\"decline_code\":\"partial_approval_reversed\"}");
    assertThat(declined.status()).as(declined.body()).isEqualTo(200);
    assertThat(declined.json().getString("resolved_as")).isEqualTo("declined");
    assertThat(declined.json().getBoolean("verdict_overridden")).isFalse();
    assertThat(declined.json().getBoolean("acquirer_answered")).isTrue();

    Http.Reply retry = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);
    assertThat(retry.status()).as(retry.body()).isEqualTo(402);
    assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(retry.json().getString("id")).isEqualTo(paymentId);
    assertThat(retry.json().getString("decline_code")).isEqualTo("partial_approval_reversed");
    assertThat(db.scalar("SELECT status FROM idemgate.payments WHERE id = $1", paymentId)).isEqualTo("declined");
    assertThat(db.scalar("SELECT count(*) FROM idemgate.released_payments WHERE id = $1", paymentId)).isEqualTo(0L);
    JsonObject log = http.get(acquirer.actualPort(), "/charges?idempotency_key=" + providerKey, null).json();
    assertThat(log.getJsonArray("charges")).as("the partial approval only").hasSize(1);
    for (Http.Reply refused : new Http.Reply[] {notCharged, succeeded}) {
      assertThat(refused.json().getString("detail")).contains("another amount or currency", "settle the payment as declined");
    }
  }

  /** A charge the acquirer makes under {@code providerKey} before the gateway asks; its id. */
  private static String chargeAtTheAcquirer(String providerKey, long amount, String currency) {
    Http.Reply held = http.send(HttpMethod.POST, acquirer.actualPort(), "/charges",
        Map.of("Idempotency-Key", providerKey, "Content-Type", "application/json"),
        new JsonObject().put("amount", amount).put("currency", currency).put("source", "tok_visa").toBuffer());
    assertThat(held.json().getString("status")).isEqualTo("succeeded");
    return held.json().getString("id");
  }

  private static Http.Reply settle(String paymentId, String verdict) {
    return http.send(HttpMethod.POST, gateway.managementPort(), "/admin/pending/" + paymentId + "/resolve",
        Map.of("Authorization", "Bearer " + TestGateway.ADMIN_TOKEN, "Content-Type", "application/json"), Buffer.buffer(verdict));
  }

  @ParameterizedTest(name = "acquirer holds {0} {1}, the payment asks {2} {3}")
  @CsvSource({"1000, EUR, 5000, EUR", "5000, USD, 5000, EUR"})
  @DisplayName("is not recorded as the payment's success: the payment stays pending, also after recovery asked")
  void otherChargeIsNotThePayments(long heldAmount, String heldCurrency, long askedAmount, String askedCurrency) {
    String key = Http.newKey();
    String providerKey = ProviderKeys.of(TestGateway.MERCHANT_A, key);
    chargeAtTheAcquirer(providerKey, heldAmount, heldCurrency);

    JsonObject body = Http.payment(askedAmount, "tok_visa").put("currency", askedCurrency);
    Http.Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);
    assertThat(first.status()).as("the acquirer charged %d %s, not the %d %s asked: %s", heldAmount, heldCurrency,
        askedAmount, askedCurrency, first.body()).isEqualTo(202);

    // Recovery asks every few hundred milliseconds; the acquirer's answer stays the other charge.
    sleep(3_000);
    Http.Reply later = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);
    assertThat(later.status()).as(later.body()).isEqualTo(202);
    assertThat(later.json().getString("status")).isEqualTo("pending");
    JsonObject log = http.get(acquirer.actualPort(), "/charges?idempotency_key=" + providerKey, null).json();
    assertThat(log.getJsonArray("charges")).hasSize(1);
  }
}
