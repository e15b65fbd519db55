package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The acquirer refuses before accepting (503), or cannot be reached at all: the gateway must answer
 * 502 provider_unavailable, release the key, and let a retry with the same key charge once.
 * Every property of the checker holds here, nothing waived.
 *
 * <p>The connector's circuit breaker opens after 5 provider failures within 10 s; the tests here stay
 * under that so that each retry really reaches the acquirer.
 */
@DisplayName("provider down before accepting")
class ProviderDownIT extends ProviderFaultFixture {

  @BeforeAll
  static void start() {
    startAll("2s", Map.of());
  }

  @Test
  @DisplayName("a 503 from the acquirer gives 502 provider_unavailable, retries are processed anew, nothing is charged")
  void acquirerRefuses() {
    String key = Http.newKey();
    var body = Http.payment(1500, "tok_provider_down");
    Http.Reply first = pay(key, body);
    assertThat(first.status()).isEqualTo(502);
    assertThat(first.json().getString("code")).isEqualTo("provider_unavailable");
    assertThat(pay(key, body).status()).isEqualTo(502);
    assertThat(acquirerLog(key).getInteger("requests")).isZero();
    check().assertValid();
  }

  @Test
  @DisplayName("an unreachable acquirer gives 502, and the retry with the same key once it is back charges exactly once")
  void acquirerUnreachableThenBack() {
    String key = Http.newKey();
    var body = Http.payment(3100, "tok_visa");
    proxy.refuse();
    assertThat(pay(key, body).status()).isEqualTo(502);
    assertThat(acquirerLog(key).getInteger("requests")).isZero();
    proxy.pass();
    Http.Reply retry = pay(key, body);
    assertThat(retry.status()).isEqualTo(201);
    assertThat(pay(key, body).body()).isEqualTo(retry.body());
    assertThat(acquirerLog(key).getJsonArray("charges")).hasSize(1);

    var report = check();
    assertThat(report.chargedAmount()).isEqualTo(3100);
    report.assertValid();
  }
}
