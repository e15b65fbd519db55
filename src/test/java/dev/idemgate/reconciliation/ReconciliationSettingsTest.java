package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.idemgate.config.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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

  @Test
  @DisplayName("run_retention keeps every run by default (0s); otherwise 1d to 36500d and at least settlement_lag, "
      + "anything else refused naming it")
  void runRetentionBounded() {
    assertThat(ReconciliationSettings.load(Optional.empty(), Map.of()).runRetention()).isZero();
    assertThat(ReconciliationSettings.load(Optional.empty(), Map.of("IDEMGATE_RECONCILIATION_RUN_RETENTION", "400d"))
        .runRetention()).isEqualTo(Duration.ofDays(400));
    assertThat(ReconciliationSettings.runRetention("24h")).isEqualTo(Duration.ofDays(1));
    assertThatThrownBy(() -> ReconciliationSettings.runRetention("23h"))
        .isInstanceOf(ConfigException.class).hasMessage("run_retention: 0s keeps every run; any other value must be at least 1d, got 23h");
    assertThatThrownBy(() -> ReconciliationSettings.runRetention("36501d"))
        .isInstanceOf(ConfigException.class).hasMessage("run_retention: must be at most 36500d, got 36501d");
    assertThatThrownBy(() -> ReconciliationSettings.load(Optional.empty(), Map.of("IDEMGATE_RECONCILIATION_RUN_RETENTION", "a year")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("run_retention: ");
    // Never shorter than the lag (2d by default): later files still need those runs' settlements.
    assertThatThrownBy(() -> ReconciliationSettings.load(Optional.empty(), Map.of("IDEMGATE_RECONCILIATION_RUN_RETENTION", "1d")))
        .isInstanceOf(ConfigException.class)
        .hasMessage("run_retention: 0s keeps every run; any other value must be at least settlement_lag (2d), got 1d");
    assertThat(ReconciliationSettings.load(Optional.empty(), Map.of("IDEMGATE_RECONCILIATION_RUN_RETENTION", "48h"))
        .runRetention()).isEqualTo(Duration.ofDays(2));
    assertThatThrownBy(() -> ReconciliationSettings.load(Optional.empty(), Map.of(
        "IDEMGATE_RECONCILIATION_RUN_RETENTION", "30d", "IDEMGATE_RECONCILIATION_SETTLEMENT_LAG", "31d")))
        .isInstanceOf(ConfigException.class).hasMessageContaining("at least settlement_lag (31d), got 30d");
    // A run's own lag leaves the retention as configured.
    ReconciliationSettings kept = ReconciliationSettings.load(Optional.empty(), Map.of("IDEMGATE_RECONCILIATION_RUN_RETENTION", "30d"));
    assertThat(kept.withSettlementLag(Duration.ofDays(4)).runRetention()).isEqualTo(Duration.ofDays(30));
  }

  @Test
  @DisplayName("a reconciliation file that is missing or a directory is refused saying so, not with its path repeated")
  void unreadableFile(@TempDir Path dir) {
    Path missing = dir.resolve("absent.yaml");
    assertThatThrownBy(() -> ReconciliationSettings.load(Optional.of(missing), Map.of()))
        .isInstanceOf(ConfigException.class).hasMessage("cannot read reconciliation settings " + missing + ": no such file");
    assertThatThrownBy(() -> ReconciliationSettings.load(Optional.of(dir), Map.of()))
        .isInstanceOf(ConfigException.class).hasMessage("cannot read reconciliation settings " + dir + ": is a directory");
  }

  @Test
  @DisplayName("a setting given twice in the reconciliation file is refused naming the file, the setting and the line, as in idemgate.yaml")
  void duplicateSetting(@TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("reconciliation.yaml"), "settlement_lag: 1d\nmatch_threshold: 0.9\nsettlement_lag: 3d\n");
    assertThatThrownBy(() -> ReconciliationSettings.load(Optional.of(file), Map.of()))
        .isInstanceOf(ConfigException.class)
        .hasMessage(file + ": settlement_lag is given twice (line 3); keep one");
    Path nested = Files.writeString(dir.resolve("nested.yaml"),
        "column_map:\n  acme:\n    amount: amt\n    amount: total\n");
    assertThatThrownBy(() -> ReconciliationSettings.load(Optional.of(nested), Map.of()))
        .isInstanceOf(ConfigException.class)
        .hasMessage(nested + ": amount is given twice (line 4); keep one");
  }

  @Test
  @DisplayName("an IDEMGATE_RECONCILIATION_ variable that sets nothing is warned about once, by name, never its value")
  void ignoredVariables() {
    List<String> warnings = new ArrayList<>();
    ReconciliationSettings settings = ReconciliationSettings.load(Optional.empty(), Map.of(
        "IDEMGATE_RECONCILIATION_SETTLEMNT_LAG", "secret-3d", "IDEMGATE_RECONCILIATION_COLUMN_MAP", "secret-map",
        "IDEMGATE_RECONCILIATION_MATCH_THRESHOLD", "0.9", "IDEMGATE_RECONCILIATION_CONFIG", "",
        "IDEMGATE_PROVIDER", "simulator"), warnings::add);
    assertThat(settings.matchThreshold()).isEqualTo(0.9);
    assertThat(warnings).containsExactly("environment variables that name no reconciliation setting, ignored: "
        + "IDEMGATE_RECONCILIATION_COLUMN_MAP, IDEMGATE_RECONCILIATION_SETTLEMNT_LAG");
    warnings.clear();
    ReconciliationSettings.load(Optional.empty(), Map.of("IDEMGATE_RECONCILIATION_SETTLEMENT_LAG", "3d"), warnings::add);
    assertThat(warnings).isEmpty();
  }
}
