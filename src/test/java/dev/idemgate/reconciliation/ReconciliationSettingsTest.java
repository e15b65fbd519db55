package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.idemgate.config.ConfigException;
import java.time.Duration;

import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class ReconciliationSettingsTest {
  @Test
  @DisplayName("max_upload_mib may be a fraction: half a MiB is 524,288 bytes, not 0 (every upload refused)")
  void fractionalUploadLimit() {
    ReconciliationSettings half = ReconciliationSettings.load(Optional.empty(),
        Map.of("IDEMGATE_RECONCILIATION_MAX_UPLOAD_MIB", "0.5"));
    assertThat(half.maxUploadBytes()).isEqualTo(524_288);
    assertThat(ReconciliationSettings.load(Optional.empty(), Map.of()).maxUploadBytes()).isEqualTo(1024L * 1024 * 1024);
  }

  @Test
  @DisplayName("settlement_lag and --settlement-lag are at most 90d, refused naming which was given, not stored as a FAILED run")
  void settlementLagBounded() {
    assertThatThrownBy(() -> ReconciliationSettings.load(Optional.empty(),
        Map.of("IDEMGATE_RECONCILIATION_SETTLEMENT_LAG", "99999999d")))
        .isInstanceOf(ConfigException.class).hasMessage("settlement_lag: must be at most 90d, got 99999999d");
    assertThatThrownBy(() -> ReconciliationSettings.settlementLag("--settlement-lag", "91d"))
        .isInstanceOf(ConfigException.class).hasMessage("--settlement-lag: must be at most 90d, got 91d");
    assertThat(ReconciliationSettings.settlementLag("--settlement-lag", "90d")).isEqualTo(Duration.ofDays(90));
    assertThat(ReconciliationSettings.settlementLag("--settlement-lag", "0s")).isEqualTo(Duration.ZERO);
  }
}
