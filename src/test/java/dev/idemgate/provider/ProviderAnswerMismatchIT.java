package dev.idemgate.provider;

import static dev.idemgate.support.Waits.sleep;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayPostgres;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The acquirer answers a charge with a charge of another amount or currency than the one asked (a
 * partial approval, or an earlier charge it returns for the provider key). A deduplicating acquirer
 * that already holds a charge under the payment's provider key answers that way; the gateway must not
 * tell its client that the payment it asked for succeeded, neither on the request path nor when
 * recovery asks again.
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

  @BeforeAll
  static void start() {
    pg = ThrowawayPostgres.start();
    vertx = Vertx.vertx();
    acquirer = new AcquirerServer(0, 0, 0, true);
    Http.await(vertx.deployVerticle(acquirer));
    gateway = TestGateway.start(Map.of("IDEMGATE_PG_URL", pg.url(), "IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:" + acquirer.actualPort(), "IDEMGATE_PROVIDER_TIMEOUT", "2s",
        "IDEMGATE_LEASE", "5s", "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_RECOVERY_BACKOFF", "300ms,600ms"));
    http = new Http();
  }

  @AfterAll
  static void stop() {
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

  @ParameterizedTest(name = "acquirer holds {0} {1}, the payment asks {2} {3}")
  @CsvSource({"1000, EUR, 5000, EUR", "5000, USD, 5000, EUR"})
  @DisplayName("is not recorded as the payment's success: the payment stays pending, also after recovery asked")
  void otherChargeIsNotThePayments(long heldAmount, String heldCurrency, long askedAmount, String askedCurrency) {
    String key = Http.newKey();
    String providerKey = ProviderKeys.of(TestGateway.MERCHANT_A, key);
    Http.Reply held = http.send(HttpMethod.POST, acquirer.actualPort(), "/charges",
        Map.of("Idempotency-Key", providerKey, "Content-Type", "application/json"),
        new JsonObject().put("amount", heldAmount).put("currency", heldCurrency).put("source", "tok_visa").toBuffer());
    assertThat(held.json().getString("status")).isEqualTo("succeeded");

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
