package dev.idemgate.http;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

/**
 * HTTP dates in the IMF-fixdate form of RFC 9110 ({@code Sun, 06 Nov 1994 08:49:37 GMT}: two-digit
 * day, English names). Each event loop remembers the last second it formatted: the expiry of
 * payments made in the same second is the same text, and formatting costs more than the rest of a
 * replay's headers.
 */
final class HttpDates {
  private static final DateTimeFormatter IMF_FIXDATE =
      DateTimeFormatter.ofPattern("EEE, dd MMM yyyy HH:mm:ss 'GMT'", Locale.ENGLISH).withZone(ZoneOffset.UTC);

  private record Formatted(long epochSecond, String text) {}

  private static final ThreadLocal<Formatted> LAST = new ThreadLocal<>();

  private HttpDates() {}

  static String format(Instant instant) {
    long second = instant.getEpochSecond();
    Formatted last = LAST.get();
    if (last == null || last.epochSecond() != second) {
      last = new Formatted(second, IMF_FIXDATE.format(instant));
      LAST.set(last);
    }
    return last.text();
  }
}
