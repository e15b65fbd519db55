package dev.idemgate.bench;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as the runner passes them: {@code 500ms}, {@code 10s}, {@code 2m}, or bare seconds. */
final class BenchDurations {
  private static final Pattern FORM = Pattern.compile("(\\d+)(ms|s|m)?");

  private BenchDurations() {}

  static Duration parse(String text) {
    Matcher m = FORM.matcher(text.trim());
    if (!m.matches()) {
      throw new IllegalArgumentException("not a duration (500ms, 10s, 2m): " + text);
    }
    long n = Long.parseLong(m.group(1));
    String unit = m.group(2) == null ? "s" : m.group(2);
    switch (unit) {
      case "ms": return Duration.ofMillis(n);
      case "m": return Duration.ofMinutes(n);
      default: return Duration.ofSeconds(n);
    }
  }
}
