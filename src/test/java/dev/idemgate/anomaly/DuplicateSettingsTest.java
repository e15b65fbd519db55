package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.idemgate.config.ConfigException;
import dev.idemgate.config.ConfigLoader;
import dev.idemgate.config.GatewayConfig;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class DuplicateSettingsTest {
  @Test
  @DisplayName("by default twins are flagged within 10 minutes, over amount, currency, source and reference")
  void defaults() {
    GatewayConfig config = ConfigLoader.load(Optional.empty(), Map.of());
    assertThat(config.duplicatePayloadPolicy()).isEqualTo(DuplicatePayloadPolicy.FLAG);
    assertThat(config.duplicateWindow()).isEqualTo(Duration.ofMinutes(10));
    assertThat(config.duplicateFields()).containsExactly("amount", "currency", "source", "merchant_reference");
    assertThat(config.toString()).contains("duplicate_payload_policy=flag");
  }

  @Test
  @DisplayName("IDEMGATE_DUPLICATE_PAYLOAD_POLICY=reject and the window and fields come from the environment")
  void environment() {
    GatewayConfig config = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "REJECT",
        "IDEMGATE_DUPLICATE_WINDOW", "2m", "IDEMGATE_DUPLICATE_FIELDS", "amount, currency,source"));
    assertThat(config.duplicatePayloadPolicy()).isEqualTo(DuplicatePayloadPolicy.REJECT);
    assertThat(config.duplicateWindow()).isEqualTo(Duration.ofMinutes(2));
    assertThat(config.duplicateFields()).isEqualTo(List.of("amount", "currency", "source"));
  }

  @Test
  @DisplayName("a bad policy, window or field fails start-up with one line naming the setting")
  void badValues() {
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "block")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("duplicate_payload_policy:");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_DUPLICATE_WINDOW", "0s")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("duplicate_window:");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_DUPLICATE_FIELDS", "amount,card")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("duplicate_fields:");
  }
}
