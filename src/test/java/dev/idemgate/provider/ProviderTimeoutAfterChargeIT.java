package dev.idemgate.provider;

import static dev.idemgate.support.Waits.sleep;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.ExactlyOnceChecker.Property;
import dev.idemgate.support.ExactlyOnceChecker.Report;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The acquirer charges, then its answer never comes (tok_timeout_after_charge): the gateway must answer
 * 202 pending, replay that to every retry, and never send the charge again.
 *
 * <p>While the payment is pending the ledger does not yet hold the success the acquirer made, so the
 * checker is first run with NOTHING_STUCK and AMOUNTS_RECONCILE waived, and what the waiver covers is
 * asserted exactly (one stuck record, one charge's amount missing). Then recovery asks the acquirer,
 * the retries get the final 201, and every property holds.
 */
@DisplayName("provider answer lost after the charge")
class ProviderTimeoutAfterChargeIT extends ProviderFaultFixture {

  @BeforeAll
  static void start() {
    startAll("1s", Map.of());
  }

  @Test
  @DisplayName("the client gets 202 pending, every retry replays it, and the acquirer charged exactly once")
  void pendingAndChargedOnce() {
    String key = Http.newKey();
    var body = Http.payment(1999, "tok_timeout_after_charge");
    Http.Reply first = pay(key, body);
    assertThat(first.status()).isEqualTo(202);
    assertThat(first.json().getString("status")).isEqualTo("pending");
    for (int i = 0; i < 3; i++) {
      Http.Reply retry = pay(key, body);
      assertThat(retry.status()).isEqualTo(202);
      assertThat(retry.json().getString("id")).isEqualTo(first.json().getString("id"));
    }
    assertThat(acquirerLog(key).getInteger("requests")).isEqualTo(1);
    assertThat(acquirerLog(key).getJsonArray("charges")).hasSize(1);

    Report whilePending = check();
    assertThat(whilePending.stuck()).isEqualTo(1);
    assertThat(whilePending.chargedAmount() - whilePending.ledgerAmount()).isEqualTo(1999);
    whilePending.assertValidExcept(Property.NOTHING_STUCK, Property.AMOUNTS_RECONCILE);

    Http.Reply settled = awaitSettled(key, body, Duration.ofSeconds(20));
    assertThat(settled.status()).isEqualTo(201);
    assertThat(settled.json().getString("id")).isEqualTo(first.json().getString("id"));
    assertThat(acquirerLog(key).getInteger("requests")).isEqualTo(1);
    Report report = check();
    assertThat(report.chargedAmount()).isEqualTo(1999);
    report.assertValid();
  }

  @Test
  @DisplayName("retries while the lost answer is awaited get 409 and never reach the acquirer")
  void retriesInFlightNeverReachAcquirer() {
    String key = Http.newKey();
    var body = Http.payment(2500, "tok_timeout_after_charge");
    Future<Http.Reply> first = history.payAsync(http, gateway.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A, key, body, Map.of());
    sleep(200);
    List<Future<Http.Reply>> retries = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      retries.add(history.payAsync(http, gateway.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A, key, body, Map.of()));
    }
    for (Future<Http.Reply> retry : retries) {
      assertThat(Http.await(retry).status()).isEqualTo(409);
    }
    assertThat(Http.await(first).status()).isEqualTo(202);
    assertThat(pay(key, body).status()).isEqualTo(202);
    assertThat(acquirerLog(key).getInteger("requests")).isEqualTo(1);

    assertThat(awaitSettled(key, body, Duration.ofSeconds(20)).status()).isEqualTo(201);
    assertThat(acquirerLog(key).getInteger("requests")).isEqualTo(1);
    Report report = check();
    assertThat(report.failed()).isEqualTo(4);
    report.assertValid();
  }

}
