package dev.idemgate.reconciliation;

import java.util.Locale;

/** The forms a reconciliation report takes. */
public enum ReportFormat {
  JSON("application/json"),
  CSV("text/csv; charset=utf-8"),
  HTML("text/html; charset=utf-8");

  private final String contentType;

  ReportFormat(String contentType) {
    this.contentType = contentType;
  }

  public String contentType() {
    return contentType;
  }

  /** json, csv or html (any case); null when it is none of them. */
  public static ReportFormat parse(String text) {
    if (text == null) {
      return null;
    }
    try {
      return valueOf(text.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      return null;
    }
  }
}
