package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.Waits;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The http connector's circuit breaker as operators see it: its meter, and the payments around it. */
@DisplayName("provider circuit breaker")
class ProviderCircuitIT extends ProviderFaultFixture {

  @BeforeAll
  static void start() {
    startAll("2s", Map.of());
  }

  @BeforeEach
  void noConnectionKeptFromAnotherTest() {
    // A refused proxy stops new connections only: one kept alive from an earlier test would still
    // take charges, and the breaker would not open.
    proxy.pass();
    proxy.cutAll();
    Waits.eventually(Duration.ofSeconds(5), () -> proxy.openConnections() == 0, "no connection to the acquirer left");
  }

  private double circuitMeter() {
    return Scrape.value(http.get(gateway.managementPort(), "/metrics", null).body(), "idemgate_provider_circuit_open")
        .orElse(-1);
  }

  @Test
  @DisplayName("idemgate_provider_circuit_open is 0, then 1 once repeated failures open the breaker (502 without a call), "
      + "0 once it is half-open with no charge, and 0 after a trial call succeeds; every payment is charged at most once")
  void meterFollowsTheBreaker() {
    assertThat(circuitMeter()).isZero();

    proxy.refuse();
    for (int i = 0; i < 6; i++) {
      assertThat(pay(Http.newKey(), Http.payment(700 + i, "tok_visa")).status()).isEqualTo(502);
    }
    assertThat(circuitMeter()).as("open after 5 failures within 10 s").isEqualTo(1);
    // 5 s after it opened the breaker is half-open, and stays so until the next charge: that one
    // is tried, so the meter says closed, or a quiet pod would alert for good.
    Waits.eventually(Duration.ofSeconds(10), () -> circuitMeter() == 0, "half-open reads 0 without any charge");

    proxy.pass();
    String key = Http.newKey();
    var body = Http.payment(777, "tok_visa");
    // The breaker lets one call through 5 s after it opened; until then the acquirer is not called.
    Waits.eventually(Duration.ofSeconds(15), () -> pay(key, body).status() == 201, "a charge once the breaker lets one through");
    assertThat(circuitMeter()).as("closed by the successful trial call").isZero();
    assertThat(acquirerLog(key).getJsonArray("charges")).hasSize(1);
    check().assertValid();
  }

  @Test
  @DisplayName("the 502 that opens the breaker, and each one answered while it is open, says in Retry-After when this "
      + "instance tries the acquirer again, and a payment sent then is charged; a 502 the acquirer was asked for carries none")
  void openBreakerSaysWhenToRetry() throws InterruptedException {
    proxy.refuse();
    Http.Reply opening = null;
    for (int i = 0; i < 6 && opening == null; i++) {
      boolean closedWhenSent = circuitMeter() == 0;
      Http.Reply refused = pay(Http.newKey(), Http.payment(800 + i, "tok_visa"));
      assertThat(refused.status()).isEqualTo(502);
      if (refused.header("Retry-After") != null) {
        assertThat(closedWhenSent).as("the first 502 with Retry-After is the one whose failure opened the breaker").isTrue();
        opening = refused;
      } else {
        assertThat(circuitMeter()).as("a 502 without Retry-After while the breaker was closed: " + refused.body()).isZero();
      }
    }
    long openedAt = System.nanoTime();
    assertThat(opening).as("a 502 that opened the breaker, with Retry-After").isNotNull();
    assertThat(circuitMeter()).as("open after repeated failures").isEqualTo(1);
    assertThat(opening.header("Retry-After")).as("the breaker just opened, for 5 s").isEqualTo("5");
    assertThat(opening.json().getString("detail")).contains("nothing was charged", "Retry-After");

    Http.Reply open = pay(Http.newKey(), Http.payment(810, "tok_visa"));
    long elapsedSeconds = (System.nanoTime() - openedAt + 999_999_999L) / 1_000_000_000L;
    assertThat(open.status()).isEqualTo(502);
    int retryAfter = Integer.parseInt(open.header("Retry-After"));
    assertThat(retryAfter).as("the rest of the 5 s, rounded up").isBetween((int) Math.max(1, 5 - elapsedSeconds), 5);

    proxy.pass();
    Thread.sleep(retryAfter * 1000L);
    String key = Http.newKey();
    var body = Http.payment(811, "tok_visa");
    // Retry-After is rounded up, so the breaker is half-open by then; a loaded machine may run its timer late.
    Waits.eventually(Duration.ofMillis(Waits.LATE_MS), () -> pay(key, body).status() == 201, "charged once Retry-After has passed");
    assertThat(acquirerLog(key).getJsonArray("charges")).hasSize(1);
    check().assertValid();
  }

  @Test
  @DisplayName("the connections to the acquirer are in the metrics: the limit, those busy and the calls the full pool refused")
  void poolMeters() {
    String metrics = http.get(gateway.managementPort(), "/metrics", null).body();
    assertThat(Scrape.value(metrics, "idemgate_provider_connections_max")).hasValue(256);
    assertThat(Scrape.value(metrics, "idemgate_provider_connections_busy")).hasValue(0);
    assertThat(Scrape.value(metrics, "idemgate_provider_pool_full_total")).hasValue(0);
  }
}
