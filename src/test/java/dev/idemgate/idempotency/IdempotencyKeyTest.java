package dev.idemgate.idempotency;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class IdempotencyKeyTest {
  @Test
  @DisplayName("1 to 255 visible ASCII characters are a key")
  void visibleAscii() {
    assertThat(IdempotencyKey.parse("a")).contains(new IdempotencyKey("a"));
    assertThat(IdempotencyKey.parse("k".repeat(255))).isPresent();
    assertThat(IdempotencyKey.parse("order-123_retry:1/α")).isEmpty();
  }

  @Test
  @DisplayName("empty, too long, spaces and control characters are not keys")
  void invalid() {
    assertThat(IdempotencyKey.parse(null)).isEmpty();
    assertThat(IdempotencyKey.parse("")).isEmpty();
    assertThat(IdempotencyKey.parse("k".repeat(256))).isEmpty();
    assertThat(IdempotencyKey.parse("a b")).isEmpty();
    assertThat(IdempotencyKey.parse("a\tb")).isEmpty();
  }

  @Test
  @DisplayName("the quoted sf-string form is the same key, with \\\" and \\\\ escapes")
  void quoted() {
    assertThat(IdempotencyKey.parse("\"abc\"")).contains(new IdempotencyKey("abc"));
    assertThat(IdempotencyKey.parse("\"a\\\"b\\\\c\"")).contains(new IdempotencyKey("a\"b\\c"));
    assertThat(IdempotencyKey.parse("\"\"")).isEmpty();
    assertThat(IdempotencyKey.parse("\"a\\nb\"")).isEmpty();
    assertThat(IdempotencyKey.parse("\"a\"b\"")).isEmpty();
  }
}
