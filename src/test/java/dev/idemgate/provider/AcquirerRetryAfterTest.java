package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class AcquirerRetryAfterTest {
  /** Sun, 06 Nov 1994 08:49:37 GMT, the example of RFC 9110 §5.6.7. */
  private static final Instant NOW = Instant.parse("1994-11-06T08:49:37Z");

  private static int seconds(String value) {
    return AcquirerRetryAfter.seconds(List.of(value), null, NOW);
  }

  @Test
  @DisplayName("delta-seconds as given, bounded to 300; 0 says nothing")
  void deltaSeconds() {
    assertThat(seconds("120")).isEqualTo(120);
    assertThat(seconds(" 1 ")).isEqualTo(1);
    assertThat(seconds("007")).isEqualTo(7);
    assertThat(seconds("300")).isEqualTo(300);
    assertThat(seconds("301")).isEqualTo(300);
    assertThat(seconds("99999999999999999999999")).isEqualTo(300);
    assertThat(seconds("0")).isZero();
  }

  @Test
  @DisplayName("an HTTP-date in each of its three forms, seconds from now rounded up; past or now says nothing")
  void httpDates() {
    assertThat(seconds("Sun, 06 Nov 1994 08:50:37 GMT")).isEqualTo(60);
    assertThat(seconds("Sunday, 06-Nov-94 08:50:37 GMT")).as("RFC 850").isEqualTo(60);
    assertThat(seconds("Sun Nov  6 08:50:37 1994")).as("asctime").isEqualTo(60);
    assertThat(AcquirerRetryAfter.seconds(List.of("Sun, 06 Nov 1994 08:49:38 GMT"), null, NOW.plusMillis(1)))
        .as("0.999 s rounds up").isEqualTo(1);
    assertThat(seconds("Mon, 07 Nov 1994 08:49:37 GMT")).as("a day ahead, bounded").isEqualTo(300);
    assertThat(seconds("Sun, 06 Nov 1994 08:49:37 GMT")).isZero();
    assertThat(seconds("Sun, 06 Nov 1994 08:00:00 GMT")).isZero();
  }

  @Test
  @DisplayName("a date is read against the acquirer's own Date when it sent a readable one, else this clock")
  void againstTheAcquirersDate() {
    // The acquirer's clock 10 minutes behind this one: its "in 40 s" is still 40 s.
    assertThat(AcquirerRetryAfter.seconds(List.of("Sun, 06 Nov 1994 08:40:17 GMT"), "Sun, 06 Nov 1994 08:39:37 GMT", NOW))
        .isEqualTo(40);
    assertThat(AcquirerRetryAfter.seconds(List.of("Sun, 06 Nov 1994 08:50:17 GMT"), "yesterday", NOW)).isEqualTo(40);
  }

  @Test
  @DisplayName("absent, sent twice, signed, fractional, empty or no delay at all says nothing (0)")
  void garbage() {
    assertThat(AcquirerRetryAfter.seconds(List.of(), null, NOW)).isZero();
    assertThat(AcquirerRetryAfter.seconds(List.of("5", "10"), null, NOW)).isZero();
    for (String bad : List.of("-5", "+5", "1.5", "", " ", "soon", "5s", "1 20", "Sun, 06 Nov 1994 25:00:00 GMT",
        "2024-01-01T00:00:00Z", "Sun, 06 Nov 1994 08:50:37 CET")) {
      assertThat(seconds(bad)).as(bad).isZero();
    }
  }
}
