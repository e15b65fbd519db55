package dev.idemgate.http;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

/**
 * HTTP dates in the IMF-fixdate form of RFC 9110 ({@code Sun, 06 Nov 1994 08:49:37 GMT}: two-digit
 * day, English names). Formatting costs more than the rest of a replay's headers, and the header it
 * serves ({@code Idempotency-Key-Expires}) names the expiry second of each replayed key, so each
 * event loop keeps the text of the last {@link #SLOTS} seconds it formatted, one slot per second
 * modulo that: replays of keys completed within about seventeen minutes of one another share their
 * slots, where remembering only the last second missed on nearly every replay of a mix of keys.
 */
final class HttpDates {
  static final int SLOTS = 1_024; // a power of two
  private static final DateTimeFormatter IMF_FIXDATE =
      DateTimeFormatter.ofPattern("EEE, dd MMM yyyy HH:mm:ss 'GMT'", Locale.ENGLISH).withZone(ZoneOffset.UTC);

  private record Formatted(long epochSecond, String text) {}

  private static final ThreadLocal<Formatted[]> RECENT = ThreadLocal.withInitial(() -> new Formatted[SLOTS]);

  private HttpDates() {}

  static String format(Instant instant) {
    long second = instant.getEpochSecond();
    Formatted[] recent = RECENT.get();
    int slot = (int) (second & (SLOTS - 1));
    Formatted cached = recent[slot];
    if (cached == null || cached.epochSecond() != second) {
      cached = new Formatted(second, IMF_FIXDATE.format(instant));
      recent[slot] = cached;
    }
    return cached.text();
  }
}
