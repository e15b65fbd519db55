package dev.idemgate.observability;

import dev.idemgate.payment.CardNumberScanner;

/**
 * A request's method and path as what leaves the process may hold them (access lines, trace spans):
 * both are whatever a client sent, up to the 4 KiB of a request line, and a misbehaving client may
 * put a card number in either.
 */
public final class LoggableRequest {
  /** The most of a path kept. */
  public static final int MAX_PATH = 256;
  /** The most of a method kept: the longest registered method has 17 characters. */
  public static final int MAX_METHOD = 32;

  private LoggableRequest() {}

  /** A path cut to {@link #MAX_PATH} characters, or {@link CardNumberScanner#REDACTED} when it holds a card number. */
  public static String path(String path) {
    return path == null ? null : kept(path, MAX_PATH);
  }

  /**
   * A method cut to {@link #MAX_METHOD} characters, or {@link CardNumberScanner#REDACTED} when it
   * holds a card number: HTTP lets a method be any token, and the decoder hands on whatever a client
   * sent in its place.
   */
  public static String method(String method) {
    return method == null ? null : kept(method, MAX_METHOD);
  }

  private static String kept(String text, int max) {
    // The whole text is scanned, not only what is kept: a cut could leave a card number's digits behind.
    return CardNumberScanner.containsCardNumber(text) ? CardNumberScanner.REDACTED
        : text.length() > max ? text.substring(0, max) : text;
  }
}
