package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class PreferWaitTest {
  @Test
  @DisplayName("Prefer: wait is read in every RFC 7240 form: bare, quoted, with parameters, among other preferences, any case")
  void forms() {
    assertThat(ApiVerticle.waitPreference("wait=5")).isEqualTo(5);
    assertThat(ApiVerticle.waitPreference("wait=\"5\"")).isEqualTo(5);
    assertThat(ApiVerticle.waitPreference("wait=5;foo")).isEqualTo(5);
    assertThat(ApiVerticle.waitPreference("wait=5; foo=bar")).isEqualTo(5);
    assertThat(ApiVerticle.waitPreference("respond-async, WAIT = 7")).isEqualTo(7);
    assertThat(ApiVerticle.waitPreference("handling=lenient;x, wait=3")).isEqualTo(3);
  }

  @Test
  @DisplayName("a wait over 10 s is 10 s, however many digits; no wait, or one that is no number of seconds, is none")
  void limitsAndNone() {
    assertThat(ApiVerticle.waitPreference("wait=60")).isEqualTo(ApiVerticle.MAX_WAIT_SECONDS);
    assertThat(ApiVerticle.waitPreference("wait=99999")).isEqualTo(ApiVerticle.MAX_WAIT_SECONDS);
    assertThat(ApiVerticle.waitPreference("wait=99999999999999999999")).isEqualTo(ApiVerticle.MAX_WAIT_SECONDS);
    assertThat(ApiVerticle.waitPreference("respond-async")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("wait=soon")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("wait=-1")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("wait=")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("waiting=5")).isEqualTo(-1);
  }
}
