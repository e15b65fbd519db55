package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.ConfigLoader;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.StoreClaim;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * With the defaults (lease 30 s, provider_timeout 10 s, store_timeout 5 s, recovery_interval 5 s) a
 * live holder answers within 16 s of its claim, and recovery settles a record 17 s after its lease
 * ran out (takeover grace 11 s, a pass 5 s, a second for the inquiry): 47 s after the claim.
 */
class InFlightRetryAfterTest {
  private static final InFlightRetryAfter DEFAULTS = new InFlightRetryAfter(ConfigLoader.load(Optional.empty(), Map.of()));

  private static PayOutcome.InFlight awaiting(int seconds) {
    return new PayOutcome.InFlight(seconds, true);
  }

  private static StoreClaim.InFlight stored(long ageMs, long leaseLeftMs, boolean takenOver) {
    return new StoreClaim.InFlight(Duration.ofMillis(ageMs), Duration.ofMillis(leaseLeftMs), takenOver);
  }

  @Test
  @DisplayName("a claim younger than a live holder takes (or of unknown age) is answered by its holder: 1 s")
  void youngClaimHearsOneSecond() {
    assertThat(DEFAULTS.ofRedisClaim(null)).isEqualTo(InFlightRetryAfter.ANSWERING);
    assertThat(DEFAULTS.ofRedisClaim(Duration.ZERO)).isEqualTo(new PayOutcome.InFlight(1, false));
    assertThat(DEFAULTS.ofRedisClaim(Duration.ofMillis(15_999))).isEqualTo(InFlightRetryAfter.ANSWERING);
    assertThat(DEFAULTS.ofStoreClaim(stored(15_999, 14_001, false))).isEqualTo(InFlightRetryAfter.ANSWERING);
  }

  @Test
  @DisplayName("past that the holder seems gone: Retry-After runs to the end of the lease and recovery's settling, rounded up")
  void oldClaimWaitsForRecovery() {
    assertThat(DEFAULTS.ofRedisClaim(Duration.ofSeconds(16))).isEqualTo(awaiting(31));
    assertThat(DEFAULTS.ofRedisClaim(Duration.ofMillis(29_500))).isEqualTo(awaiting(18));
    assertThat(DEFAULTS.ofStoreClaim(stored(16_000, 13_900, false))).isEqualTo(awaiting(31));
    assertThat(DEFAULTS.ofStoreClaim(stored(35_000, -5_000, false))).isEqualTo(awaiting(12));
  }

  @Test
  @DisplayName("a claim whose settling is overdue (recovery behind, or running nowhere) is told recovery's next pass")
  void overdueClaimHearsTheNextPass() {
    assertThat(DEFAULTS.ofStoreClaim(stored(600_000, -570_000, false))).isEqualTo(awaiting(5));
  }

  @Test
  @DisplayName("never more than from a fresh claim, whatever lease a record holds (another instance's longer one)")
  void capped() {
    assertThat(DEFAULTS.ofStoreClaim(stored(20_000, 3_600_000, false))).isEqualTo(awaiting(47));
  }

  @Test
  @DisplayName("a record recovery took over is answered when its inquiry is: 1 s while its hold lasts, then the next takeover")
  void takenOverRecord() {
    assertThat(DEFAULTS.ofStoreClaim(stored(50_000, 10_000, true))).isEqualTo(InFlightRetryAfter.ANSWERING);
    assertThat(DEFAULTS.ofStoreClaim(stored(70_000, -1_000, true))).isEqualTo(awaiting(16));
  }

  @Test
  @DisplayName("a lease shorter than a live holder takes ends the holder's time: past it, recovery answers")
  void shortLease() {
    GatewayConfig config = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_LEASE", "3s",
        "IDEMGATE_PROVIDER_TIMEOUT", "3s"));
    InFlightRetryAfter retryAfter = new InFlightRetryAfter(config);
    assertThat(retryAfter.ofRedisClaim(Duration.ofMillis(2_999))).isEqualTo(InFlightRetryAfter.ANSWERING);
    // grace 4 s + pass 5 s + 1 s
    assertThat(retryAfter.ofRedisClaim(Duration.ofSeconds(3))).isEqualTo(awaiting(10));
  }
}
