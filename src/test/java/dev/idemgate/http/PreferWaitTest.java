package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
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

  @Test
  @DisplayName("a comma or a wait inside a quoted string is part of that value, even after an escaped quote")
  void quotedStrings() {
    assertThat(ApiVerticle.waitPreference("note=\"a, wait=5\"")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("note=\"x,wait=5,y\"")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("note=\"a, wait=5, b\"")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("note=\"a\\\", wait=5\"")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("note=\"a, wait=5\", wait=3")).isEqualTo(3);
    assertThat(ApiVerticle.waitPreference("handling=lenient; note=\"a, wait=5\", wait=2")).isEqualTo(2);
    assertThat(ApiVerticle.waitPreference("wait=\"\\7\"")).as("a quoted-pair is unescaped").isEqualTo(7);
  }

  @Test
  @DisplayName("a wait in the parameters after ';' is no wait preference")
  void parametersAreNoPreferences() {
    assertThat(ApiVerticle.waitPreference("respond-async; wait=5")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("respond-async;wait=\"5\";x")).isEqualTo(-1);
  }

  @Test
  @DisplayName("a wait given twice counts as first given (RFC 7240 section 2), even when the first is no number")
  void firstWins() {
    assertThat(ApiVerticle.waitPreference("wait=3, wait=7")).isEqualTo(3);
    assertThat(ApiVerticle.waitPreference("wait=soon, wait=5")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("wait, wait=5")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("wait=\"\", wait=5")).isEqualTo(-1);
  }

  @Test
  @DisplayName("several Prefer lines are one list in order: a wait in any of them counts, the first one only")
  void severalLines() {
    assertThat(ApiVerticle.waitPreference(List.of("respond-async", "wait=5"))).isEqualTo(5);
    assertThat(ApiVerticle.waitPreference(List.of("note=\"a, wait=9\"", "wait=2"))).isEqualTo(2);
    assertThat(ApiVerticle.waitPreference(List.of("wait=soon", "wait=5"))).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference(List.of("wait=4", "wait=8"))).isEqualTo(4);
  }

  @Test
  @DisplayName("delta-seconds with leading zeros is its number; an element that breaks the grammar is passed over")
  void numbersAndMalformedElements() {
    assertThat(ApiVerticle.waitPreference("wait=000007")).isEqualTo(7);
    assertThat(ApiVerticle.waitPreference("wait=0")).isEqualTo(0);
    assertThat(ApiVerticle.waitPreference(", ,wait=6,")).isEqualTo(6);
    assertThat(ApiVerticle.waitPreference("wait 5, wait=2")).isEqualTo(2);
    assertThat(ApiVerticle.waitPreference("wait=5 x")).isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("wait=\"5")).as("no closing quote").isEqualTo(-1);
    assertThat(ApiVerticle.waitPreference("wait=5/")).isEqualTo(-1);
  }
}
