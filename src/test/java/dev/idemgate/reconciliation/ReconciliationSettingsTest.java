package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;

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
}
