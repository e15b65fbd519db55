package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.ExactlyOnceChecker.Property;
import dev.idemgate.support.ExactlyOnceChecker.Report;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The connection to the acquirer is reset after the charge was sent: by the acquirer itself
 * (tok_reset_after_charge), or by the network while the acquirer is still working (a cut at the proxy
 * during tok_slow). Either way the gateway must answer 202 pending and never charge again.
 * NOTHING_STUCK and AMOUNTS_RECONCILE are waived until recovery finalises pending payments.
 */
@DisplayName("connection reset after the charge was sent")
class ProviderResetAfterChargeIT extends ProviderFaultFixture {
  private static final long SLOW_MS = 1_500;

  @BeforeAll
  static void start() {
    startAll("3s", Map.of("IDEMGATE_SIMULATOR_SLOW_MS", String.valueOf(SLOW_MS)));
  }

  @Test
  @DisplayName("a reset by the acquirer after charging gives 202 pending, replayed, with one charge")
  void resetByAcquirer() {
    String key = Http.newKey();
    var body = Http.payment(4200, "tok_reset_after_charge");
    Http.Reply first = pay(key, body);
    assertThat(first.status()).isEqualTo(202);
    assertThat(pay(key, body).status()).isEqualTo(202);
    assertThat(acquirerLog(key).getJsonArray("charges")).hasSize(1);

    Report report = check();
    assertThat(report.stuck()).isEqualTo(1);
    report.assertValidExcept(Property.NOTHING_STUCK, Property.AMOUNTS_RECONCILE);
  }

  @Test
  @DisplayName("a network cut while the acquirer works gives 202 pending; the charge it finishes is the only one")
  void cutInFlight() throws InterruptedException {
    String key = Http.newKey();
    var body = Http.payment(777, "tok_slow");
    Future<Http.Reply> first = history.payAsync(http, gateway.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A, key, body, Map.of());
    for (int i = 0; i < 100 && proxy.openConnections() == 0; i++) {
      Thread.sleep(20);
    }
    Thread.sleep(200);
    assertThat(proxy.cutAll()).isPositive();
    assertThat(Http.await(first).status()).isEqualTo(202);
    Thread.sleep(SLOW_MS);
    assertThat(pay(key, body).status()).isEqualTo(202);
    assertThat(acquirerLog(key).getJsonArray("charges")).hasSize(1);

    Report report = check();
    assertThat(report.doubleCharges()).isZero();
    report.assertValidExcept(Property.NOTHING_STUCK, Property.AMOUNTS_RECONCILE);
  }
}
