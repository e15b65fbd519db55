package dev.idemgate.support;

import java.util.OptionalDouble;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Reads one sample out of a Prometheus text scrape of /metrics. */
public final class Scrape {
  private Scrape() {}

  /**
   * The value of {@code series}, written as the scrape writes it: the name, then its labels if it
   * has any ({@code idemgate_store_group_payments_count{operation="claim"}}); empty when absent.
   */
  public static OptionalDouble value(String scrape, String series) {
    Matcher sample = Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(scrape);
    return sample.find() ? OptionalDouble.of(Double.parseDouble(sample.group(1))) : OptionalDouble.empty();
  }
}
