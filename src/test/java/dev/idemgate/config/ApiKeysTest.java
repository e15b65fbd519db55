package dev.idemgate.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ApiKeysTest {
  @ParameterizedTest
  @ValueSource(strings = {"demo=sk_test secret", "demo=sk_test\u0001secret", "demo=sk_test_s\u00e9cret", "demo=short"})
  @DisplayName("a key no client could present in Authorization: Bearer (a space, a control or non-ASCII character "
      + "inside it) is refused like a short one, without the key in the message")
  void keysAClientCannotSendAreRefused(String entry) {
    assertThatThrownBy(() -> ApiKeys.parse(entry)).isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("api_keys:").hasMessageNotContaining("secret").hasMessageNotContaining("short");
  }

  @ParameterizedTest
  @ValueSource(strings = {"sk_test_demo", "sk_live_AbC-_9.~+/=", "Zm9vYmFyYmF6:!#$%&"})
  @DisplayName("any 8 or more visible ASCII characters are a key, surrounding spaces left out")
  void visibleAsciiKeys(String key) {
    assertThat(ApiKeys.parse(" demo = " + key + " ")).containsEntry(key, "demo");
  }

  @Test
  @DisplayName("one key given to two merchants is refused without the key; the same entry twice is not, as in api_keys_file")
  void sameKeyTwice() {
    assertThat(ApiKeys.parse("demo=sk_test_demo,shop=sk_test_shop,demo=sk_test_demo"))
        .containsOnlyKeys("sk_test_demo", "sk_test_shop").containsEntry("sk_test_demo", "demo");
    assertThatThrownBy(() -> ApiKeys.parse("demo=sk_test_shared,shop=sk_test_shared")).isInstanceOf(ConfigException.class)
        .hasMessageContaining("two merchants").hasMessageNotContaining("shared");
  }
}
