package dev.idemgate.idempotency;

import java.util.Optional;

/**
 * A validated client idempotency key: 1-255 visible ASCII characters, given bare ({@code abc}) or
 * as the quoted structured-field string of the IETF draft ({@code "abc"}, with {@code \"} and
 * {@code \\} escapes). Both forms of the same key are the same key.
 */
public record IdempotencyKey(String value) {
  public static final int MAX_LENGTH = 255;

  /** The key carried by a header value, or empty when the value is not a valid key. */
  public static Optional<IdempotencyKey> parse(String header) {
    if (header == null) {
      return Optional.empty();
    }
    String raw = header.strip();
    if (raw.length() >= 2 && raw.charAt(0) == '"' && raw.charAt(raw.length() - 1) == '"') {
      return unquote(raw.substring(1, raw.length() - 1)).filter(IdempotencyKey::isValidLength).map(IdempotencyKey::new);
    }
    if (!isValidLength(raw)) {
      return Optional.empty();
    }
    for (int i = 0; i < raw.length(); i++) {
      char c = raw.charAt(i);
      if (c < 0x21 || c > 0x7e) {
        return Optional.empty();
      }
    }
    return Optional.of(new IdempotencyKey(raw));
  }

  private static boolean isValidLength(String s) {
    return !s.isEmpty() && s.length() <= MAX_LENGTH;
  }

  /** sf-string content: printable ASCII including space, where only \" and \\ are escapes. */
  private static Optional<String> unquote(String inner) {
    StringBuilder out = new StringBuilder(inner.length());
    for (int i = 0; i < inner.length(); i++) {
      char c = inner.charAt(i);
      if (c == '\\') {
        if (i + 1 == inner.length() || (inner.charAt(i + 1) != '"' && inner.charAt(i + 1) != '\\')) {
          return Optional.empty();
        }
        out.append(inner.charAt(++i));
      } else if (c == '"' || c < 0x20 || c > 0x7e) {
        return Optional.empty();
      } else {
        out.append(c);
      }
    }
    return Optional.of(out.toString());
  }
}
