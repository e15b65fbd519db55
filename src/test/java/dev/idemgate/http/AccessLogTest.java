package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class AccessLogTest {
  @Test
  @DisplayName("a fragment is not part of a logged path")
  void fragmentsAreCut() {
    assertThat(AccessLog.withoutFragment("/admin/pending#frag")).isEqualTo("/admin/pending");
    assertThat(AccessLog.withoutFragment(null)).isNull();
  }
}
