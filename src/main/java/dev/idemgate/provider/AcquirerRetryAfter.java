package dev.idemgate.provider;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoField;
import java.util.List;
import java.util.Locale;

/**
 * The acquirer's own {@code Retry-After} on a refusal before acceptance (429, or 503 with its error
 * body): how long it will refuse a charge the same way, so the client's 502 can say it. This is the
 * one thing read from the acquirer's headers for the client; nothing else of them goes on.
 *
 * <p>RFC 9110 §10.2.3: delta-seconds ({@code 1*DIGIT}) or an HTTP-date, in any of its three forms
 * (§5.6.7: a recipient must take all three). A date is read against the acquirer's own {@code Date}
 * when it sent a readable one, so that its clock and this one need not agree; else against this
 * instance's clock. The delay is bounded to {@value #MAX_SECONDS} s (a longer one says that much:
 * the client comes back then and is told again); no delay, a date past, a field sent twice or one
 * that is neither form is 0, "the acquirer says nothing", as when it sends none.
 */
final class AcquirerRetryAfter {
  static final int MAX_SECONDS = 300;

  /** IMF-fixdate; also the one-digit day RFC 1123 allows. */
  private static final DateTimeFormatter IMF_FIXDATE = DateTimeFormatter.RFC_1123_DATE_TIME;
  /** Obsolete asctime form, {@code Sun Nov  6 08:49:37 1994}. */
  private static final DateTimeFormatter ASCTIME =
      DateTimeFormatter.ofPattern("EEE MMM ppd HH:mm:ss yyyy", Locale.ENGLISH).withZone(ZoneOffset.UTC);

  private AcquirerRetryAfter() {}

  /**
   * Whole seconds, 1 to {@value #MAX_SECONDS}, or 0 when the acquirer said nothing usable.
   *
   * @param fieldValues every {@code Retry-After} line of the answer
   * @param acquirerDate its {@code Date}, or null
   * @param now this instance's clock, when the answer has no readable {@code Date}
   */
  static int seconds(List<String> fieldValues, String acquirerDate, Instant now) {
    if (fieldValues.size() != 1) {
      return 0;
    }
    String value = fieldValues.get(0).trim();
    if (value.isEmpty()) {
      return 0;
    }
    if (value.chars().allMatch(c -> c >= '0' && c <= '9')) {
      // Past the bound it stays past it: a number too long for a long is as long as any.
      return value.length() > 9 ? MAX_SECONDS : bounded(Long.parseLong(value));
    }
    Instant until = date(value, now);
    if (until == null) {
      return 0;
    }
    Instant acquirerNow = acquirerDate == null ? null : date(acquirerDate.trim(), now);
    Duration left = Duration.between(acquirerNow != null ? acquirerNow : now, until);
    // Rounded up: told a second early, the retry meets the same refusal.
    return left.isNegative() ? 0 : bounded(left.getSeconds() + (left.getNano() > 0 ? 1 : 0));
  }

  private static int bounded(long seconds) {
    return (int) Math.min(seconds, MAX_SECONDS);
  }

  private static Instant date(String text, Instant now) {
    Instant parsed = parsed(text, IMF_FIXDATE);
    if (parsed == null) {
      parsed = parsed(text, ASCTIME);
    }
    return parsed != null ? parsed : parsed(text, rfc850(now));
  }

  private static Instant parsed(String text, DateTimeFormatter form) {
    try {
      return ZonedDateTime.parse(text, form).toInstant();
    } catch (DateTimeParseException notThisForm) {
      return null;
    }
  }

  /**
   * The obsolete RFC 850 form, {@code Sunday, 06-Nov-94 08:49:37 GMT}, its two-digit year read as
   * the one within 50 years of {@code now} (RFC 9110 §5.6.7 reads one more than 50 years ahead as
   * past). Made for each such date: only a refusal's Retry-After in this rare form comes here.
   */
  private static DateTimeFormatter rfc850(Instant now) {
    return new DateTimeFormatterBuilder()
        .appendPattern("EEEE, dd-MMM-")
        .appendValueReduced(ChronoField.YEAR, 2, 2, LocalDate.ofInstant(now, ZoneOffset.UTC).minusYears(50))
        .appendPattern(" HH:mm:ss 'GMT'")
        .toFormatter(Locale.ENGLISH).withZone(ZoneOffset.UTC);
  }
}
