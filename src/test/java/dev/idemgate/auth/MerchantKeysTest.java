package dev.idemgate.auth;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
}
