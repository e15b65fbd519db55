package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class HttpDatesTest {
  @Test
  @DisplayName("HTTP dates are IMF-fixdate: two-digit day, English names, GMT")
  void imfFixdate() {
    assertThat(HttpDates.format(Instant.parse("1994-11-06T08:49:37Z"))).isEqualTo("Sun, 06 Nov 1994 08:49:37 GMT");
    assertThat(HttpDates.format(Instant.parse("2026-12-05T23:59:59.999Z"))).isEqualTo("Sat, 05 Dec 2026 23:59:59 GMT");
  }

  @Test
  @DisplayName("the remembered last second never answers for another second")
  void cacheFollowsTheSecond() {
    Instant t = Instant.parse("2026-11-28T10:00:00Z");
    assertThat(HttpDates.format(t)).isEqualTo("Sat, 28 Nov 2026 10:00:00 GMT");
    assertThat(HttpDates.format(t.plusMillis(999))).isEqualTo("Sat, 28 Nov 2026 10:00:00 GMT");
    assertThat(HttpDates.format(t.plusSeconds(1))).isEqualTo("Sat, 28 Nov 2026 10:00:01 GMT");
    assertThat(HttpDates.format(t)).isEqualTo("Sat, 28 Nov 2026 10:00:00 GMT");
  }

  @Test
  @DisplayName("replays of keys expiring in different seconds are served from the per-loop memory, and seconds that "
      + "share a slot never answer for each other")
  void remembersRecentSeconds() {
    Instant t = Instant.parse("2026-11-29T10:00:00Z");
    String first = HttpDates.format(t);
    String second = HttpDates.format(t.plusSeconds(7));
    assertThat(HttpDates.format(t)).as("formatted once, then remembered").isSameAs(first);
    assertThat(HttpDates.format(t.plusSeconds(7))).isSameAs(second);

    Instant sameSlot = t.plusSeconds(HttpDates.SLOTS);
    assertThat(HttpDates.format(sameSlot)).isEqualTo("Sun, 29 Nov 2026 10:17:04 GMT");
    assertThat(HttpDates.format(t)).isEqualTo("Sun, 29 Nov 2026 10:00:00 GMT");
  }
}
