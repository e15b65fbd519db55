package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.ExactlyOnceChecker.Property;
import dev.idemgate.support.ExactlyOnceChecker.Report;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import java.time.Duration;
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
    Report whilePending = check();
    assertThat(whilePending.stuck()).isEqualTo(1);
    whilePending.assertValidExcept(Property.NOTHING_STUCK, Property.AMOUNTS_RECONCILE);

    assertThat(awaitSettled(key, body, Duration.ofSeconds(20)).status()).isEqualTo(201);
    assertThat(acquirerLog(key).getInteger("requests")).isEqualTo(1);
    check().assertValid();
  }

  @Test
  @DisplayName("a network cut while the acquirer works gives 202 pending; the charge it finishes is the only one")
  void cutInFlight() {
    String key = Http.newKey();
    var body = Http.payment(777, "tok_slow");
    Future<Http.Reply> first = history.payAsync(http, gateway.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A, key, body, Map.of());
    // Cut only once the acquirer has the request: an open connection (one kept alive from an earlier
    // test, say) may not have carried it yet, and a cut before it arrives rightly charges nothing.
    Waits.eventually(Duration.ofSeconds(10), () -> acquirerLog(key).getInteger("requests") == 1,
        "the acquirer received the charge");
    assertThat(proxy.cutAll()).isPositive();
    assertThat(Http.await(first).status()).isEqualTo(202);
    // Recovery may settle it before or after the acquirer finishes the slow charge: either way one charge, 201 in the end.
    Waits.eventually(Duration.ofMillis(SLOW_MS + Waits.LATE_MS), () -> acquirerLog(key).getJsonArray("charges").size() == 1,
        "the acquirer charged the card whose connection was cut");

    assertThat(awaitSettled(key, body, Duration.ofSeconds(20)).status()).isEqualTo(201);
    var log = acquirerLog(key);
    assertThat(log.getInteger("requests")).as("acquirer log %s, answers %s", log, history.ops()).isEqualTo(1);
    Report report = check();
    assertThat(report.chargedAmount()).isEqualTo(777);
    report.assertValid();
  }
}
