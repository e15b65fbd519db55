package dev.idemgate.auth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Level;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.support.CapturedLogs;
import java.nio.file.Files;
import java.util.List;

import dev.idemgate.config.ConfigLoader;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MerchantKeysTest {
  @Test
  @DisplayName("an api_keys_file that cannot be read at start says why in words (no such file, is a directory), not an exception's class")
  void unreadableFileSaysWhy(@TempDir Path dir) {
    Path missing = dir.resolve("keys");
    assertThatThrownBy(() -> MerchantKeys.load(ConfigLoader.load(Optional.empty(),
        Map.of("IDEMGATE_API_KEYS", "", "IDEMGATE_API_KEYS_FILE", missing.toString()))))
        .isInstanceOf(MerchantKeys.KeyFileUnusable.class)
        .hasMessage("api_keys_file " + missing + " cannot be read: no such file");
    assertThatThrownBy(() -> MerchantKeys.load(ConfigLoader.load(Optional.empty(),
        Map.of("IDEMGATE_API_KEYS", "", "IDEMGATE_API_KEYS_FILE", dir.toString()))))
        .hasMessage("api_keys_file " + dir + " cannot be read: is a directory");
  }

  @Test
  @DisplayName("with api_keys_file, a per-merchant setting naming a merchant without a key now is warned about once at start, naming it, never a key")
  void keylessMerchantWarned(@TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("keys"), ApiKeyFile.line("acme", "sk_live_acme_secret_key") + "\n");
    Map<String, String> env = Map.of("IDEMGATE_API_KEYS", "", "IDEMGATE_API_KEYS_FILE", file.toString(),
        "IDEMGATE_MERCHANT_RATE_LIMIT", "acme=5,acmee=50", "IDEMGATE_MERCHANT_KEY_TTL", "shop=1h");
    try (CapturedLogs logs = CapturedLogs.of(MerchantKeys.class)) {
      MerchantKeys keys = MerchantKeys.load(ConfigLoader.load(Optional.empty(), env));
      keys.warnOfKeylessMerchants(ConfigLoader.load(Optional.empty(), env));
      List<String> warnings = logs.events().stream().filter(e -> e.getLevel() == Level.WARN)
          .map(e -> e.getFormattedMessage()).toList();
      assertThat(warnings).hasSize(1);
      assertThat(warnings.get(0)).startsWith("merchant_key_ttl or merchant_rate_limit names merchant(s) with no API key "
          + "at start: acmee, shop (").doesNotContain("sk_live", "sha256");
    }
    Map<String, String> known = new java.util.HashMap<>(env);
    known.put("IDEMGATE_MERCHANT_KEY_TTL", "acme=1h");
    known.put("IDEMGATE_MERCHANT_RATE_LIMIT", "acme=5");
    try (CapturedLogs logs = CapturedLogs.of(MerchantKeys.class)) {
      GatewayConfig config = ConfigLoader.load(Optional.empty(), known);
      MerchantKeys.load(config).warnOfKeylessMerchants(config);
      assertThat(logs.events()).noneMatch(e -> e.getLevel() == Level.WARN);
    }
  }
}
