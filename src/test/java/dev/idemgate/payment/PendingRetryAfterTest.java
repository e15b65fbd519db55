package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.ConfigLoader;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** With the defaults (recovery_interval 5 s) recovery has asked 6 s after an inquiry falls due. */
class PendingRetryAfterTest {
  private static final PendingRetryAfter DEFAULTS = new PendingRetryAfter(ConfigLoader.load(Optional.empty(), Map.of()));

  @Test
  @DisplayName("a first 202 is told the first inquiry, a recovery pass and a second: 11 s with the defaults")
  void firstAnswer() {
    assertThat(DEFAULTS.untilAsked(ConfigLoader.load(Optional.empty(), Map.of()).nextInquiryAfter(0))).isEqualTo(11);
  }

  @Test
  @DisplayName("a replay is told its record's next inquiry plus a pass and a second, rounded up; one already due a pass and a second")
  void replay() {
    assertThat(DEFAULTS.untilAsked(Duration.ofMillis(29_001))).isEqualTo(36);
    assertThat(DEFAULTS.untilAsked(Duration.ZERO)).isEqualTo(6);
    assertThat(DEFAULTS.untilAsked(Duration.ofMinutes(-10))).as("recovery behind").isEqualTo(6);
    assertThat(DEFAULTS.untilAsked(Duration.ofHours(1))).isEqualTo(3606);
  }

  @Test
  @DisplayName("a recovery interval under a second: the interval and a second, rounded up (2 s)")
  void shortInterval() {
    PendingRetryAfter quick = new PendingRetryAfter(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_RECOVERY_INTERVAL", "10ms")));
    assertThat(quick.untilAsked(Duration.ZERO)).isEqualTo(2);
    assertThat(quick.untilAsked(Duration.ofMillis(-5))).isEqualTo(2);
  }
}
