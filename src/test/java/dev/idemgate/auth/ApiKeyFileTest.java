package dev.idemgate.auth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class ApiKeyFileTest {
  private static final String KEY_A = "sk_live_first-key-of-acme";
  private static final String KEY_B = "sk_live_second-key-of-acme";
  private static final String KEY_C = "sk_live_key-of-globex";

  @Test
  @DisplayName("each line gives a key's SHA-256 to a merchant; comments, blank lines, CRLF and upper-case hex are fine")
  void parsesLines() {
    String text = "# production keys\r\n"
        + ApiKeyFile.line("acme", KEY_A) + "\r\n"
        + "\n"
        + "  acme = sha256:" + ApiKeyFile.hash(KEY_B).toUpperCase(Locale.ROOT) + "  \n"
        + ApiKeyFile.line("globex.eu", KEY_C);

    Map<String, String> byHash = ApiKeyFile.parse(text);

    assertThat(byHash).containsOnly(
        Map.entry(ApiKeyFile.hash(KEY_A), "acme"),
        Map.entry(ApiKeyFile.hash(KEY_B), "acme"),
        Map.entry(ApiKeyFile.hash(KEY_C), "globex.eu"));
  }

  @Test
  @DisplayName("a file saved with a UTF-8 byte order mark (Windows editors, PowerShell) is read like one without")
  void byteOrderMark() {
    String text = "\uFEFF" + ApiKeyFile.line("acme", KEY_A) + "\r\n" + ApiKeyFile.line("globex.eu", KEY_C) + "\r\n";

    assertThat(ApiKeyFile.parse(text)).containsOnly(
        Map.entry(ApiKeyFile.hash(KEY_A), "acme"),
        Map.entry(ApiKeyFile.hash(KEY_C), "globex.eu"));
    assertThat(ApiKeyFile.isBlank("\uFEFF\n")).as("a mark alone is an empty file, refused as one being written").isTrue();
  }

  @Test
  @DisplayName("the line printed for a key is the SHA-256 of that key, never the key")
  void lineHoldsTheHashOnly() {
    String line = ApiKeyFile.line("acme", KEY_A);
    assertThat(line).doesNotContain(KEY_A).matches("acme=sha256:[0-9a-f]{64}");
    assertThat(ApiKeyFile.parse(line)).containsOnly(Map.entry(ApiKeyFile.hash(KEY_A), "acme"));
    assertThatThrownBy(() -> ApiKeyFile.line("acme corp", KEY_A)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  @DisplayName("an empty file is valid and accepts no key (every key revoked)")
  void emptyFile() {
    assertThat(ApiKeyFile.parse("")).isEmpty();
    assertThat(ApiKeyFile.parse("# nobody yet\n\n")).isEmpty();
  }

  @Test
  @DisplayName("a key in plain text is refused with its line number, and the error never repeats the key")
  void plainKeyRefused() {
    String text = ApiKeyFile.line("acme", KEY_A) + "\nglobex=" + KEY_C + "\n";
    assertThatThrownBy(() -> ApiKeyFile.parse(text))
        .isInstanceOf(ApiKeyFile.InvalidApiKeyFile.class)
        .hasMessageStartingWith("line 2: ")
        .hasMessageContaining("sha256:")
        .hasMessageNotContaining(KEY_C);
  }

  @Test
  @DisplayName("malformed lines are refused with their line number and without their text")
  void malformedLines() {
    String pasted = "sk_live_pasted-alone-on-its-line";
    assertThatThrownBy(() -> ApiKeyFile.parse("\n" + pasted))
        .hasMessageStartingWith("line 2: ").hasMessageNotContaining(pasted);
    assertThatThrownBy(() -> ApiKeyFile.parse("acme corp=sha256:" + ApiKeyFile.hash(KEY_A)))
        .hasMessageStartingWith("line 1: ").hasMessageContaining("merchant");
    assertThatThrownBy(() -> ApiKeyFile.parse("acme=sha256:" + ApiKeyFile.hash(KEY_A).substring(1)))
        .hasMessageStartingWith("line 1: ");
    assertThatThrownBy(() -> ApiKeyFile.parse("acme=md5:" + ApiKeyFile.hash(KEY_A)))
        .hasMessageStartingWith("line 1: ");
  }

  @Test
  @DisplayName("one key given to two merchants is refused; the same line twice is not")
  void oneKeyOneMerchant() {
    String twice = ApiKeyFile.line("acme", KEY_A) + "\n" + ApiKeyFile.line("acme", KEY_A);
    assertThat(ApiKeyFile.parse(twice)).hasSize(1);
    String shared = ApiKeyFile.line("acme", KEY_A) + "\n" + ApiKeyFile.line("globex", KEY_A);
    assertThatThrownBy(() -> ApiKeyFile.parse(shared))
        .hasMessage("line 2: this key is already given to merchant acme");
  }
}
