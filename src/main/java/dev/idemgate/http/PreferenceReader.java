package dev.idemgate.http;

/**
 * Reads the preferences of one {@code Prefer} field line in order (RFC 7240 §2):
 * {@code 1#preference}, each {@code token [BWS "=" BWS word] *(OWS ";" [OWS parameter])}, a word
 * being a token or an RFC 9110 §5.6.4 quoted-string. Only a comma outside a quoted-string ends a
 * preference, so a value such as {@code note="a, wait=5"} is one preference named {@code note}, and
 * a {@code wait} among the parameters after ";" is no preference at all.
 *
 * <p>Lenient where it costs nothing: empty list elements are skipped (RFC 9110 §5.6.1), and an
 * element that does not follow the grammar is passed over, up to the next comma outside quotes, as
 * no preference. Made for the rare request that sends {@code Prefer}: one per field line.
 */
final class PreferenceReader {
  private final String line;
  private int at;
  private String name;
  private String value;

  PreferenceReader(String line) {
    this.line = line;
  }

  /** Moves to the next well-formed preference of the line; false when there is none left. */
  boolean next() {
    while (true) {
      skipSpaces();
      if (at == line.length()) {
        return false;
      }
      if (line.charAt(at) == ',') {
        at++; // an empty element
        continue;
      }
      int start = at;
      if (readPreference()) {
        return true;
      }
      skipElement(start);
    }
  }

  /** The current preference's name, as sent (names compare case-insensitively, RFC 7240 §2). */
  String name() {
    return name;
  }

  /**
   * The current preference's value, unquoted and unescaped; null when it has none. An empty value
   * is the same as none (RFC 7240 §2) and is given as null too.
   */
  String value() {
    return value;
  }

  /** One element from {@code at}: true, with name and value set, when it follows the grammar up to a comma or the end. */
  private boolean readPreference() {
    name = token();
    if (name == null) {
      return false;
    }
    String given = valueIfAny();
    if (given == null) {
      return false;
    }
    value = given.isEmpty() ? null : given;
    // Parameters are read only to find where the preference ends: none of them means anything here.
    while (peek(';')) {
      at++;
      skipSpaces();
      if (token() != null && valueIfAny() == null) {
        return false;
      }
    }
    if (at == line.length()) {
      return true;
    }
    if (line.charAt(at) == ',') {
      at++;
      return true;
    }
    return false;
  }

  /**
   * After a name: {@code BWS "=" BWS word} if an "=" follows, and the spaces after it. The word,
   * unquoted; "" when there is none or it is empty (the same, RFC 7240 §2); null when a
   * quoted-string is broken.
   */
  private String valueIfAny() {
    skipSpaces();
    if (!peek('=')) {
      return "";
    }
    at++;
    skipSpaces();
    String word = word();
    skipSpaces();
    return word;
  }

  /** A token from {@code at}, or null when none starts there. */
  private String token() {
    int start = at;
    while (at < line.length() && isTokenChar(line.charAt(at))) {
      at++;
    }
    return at == start ? null : line.substring(start, at);
  }

  /**
   * A token or a quoted-string from {@code at}, unescaped; "" for nothing at all (a bare
   * {@code wait=}: an empty value, RFC 7240 §2); null when a quoted-string is broken.
   */
  private String word() {
    if (!peek('"')) {
      String token = token();
      return token == null ? "" : token;
    }
    StringBuilder text = new StringBuilder();
    at++;
    while (at < line.length()) {
      char c = line.charAt(at);
      if (c == '"') {
        at++;
        return text.toString();
      }
      if (c == '\\') {
        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        if (at + 1 == line.length() || !isQuotable(line.charAt(at + 1))) {
          return null;
        }
        text.append(line.charAt(at + 1));
        at += 2;
      } else if (isQuotable(c)) {
        text.append(c);
        at++;
      } else {
        return null; // a control character
      }
    }
    return null; // no closing quote
  }

  /**
   * Passes over a malformed element from its start up to the next comma outside a quoted-string
   * (or the end). Any quote opens one here, wherever it stands: a comma after it belongs to the
   * element, whatever else is wrong with it.
   */
  private void skipElement(int start) {
    int i = start;
    while (i < line.length()) {
      char c = line.charAt(i);
      if (c == ',') {
        at = i + 1;
        return;
      }
      if (c == '"') {
        i++;
        while (i < line.length() && line.charAt(i) != '"') {
          i += line.charAt(i) == '\\' ? 2 : 1;
        }
      }
      i++;
    }
    at = line.length();
  }

  private void skipSpaces() {
    while (at < line.length() && (line.charAt(at) == ' ' || line.charAt(at) == '\t')) {
      at++;
    }
  }

  private boolean peek(char c) {
    return at < line.length() && line.charAt(at) == c;
  }

  /** tchar, RFC 9110 §5.6.2. */
  private static boolean isTokenChar(char c) {
    return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
  }

  /** What a quoted-string may hold, bare (qdtext, less '"' and '\') or escaped: HTAB, SP, VCHAR, obs-text. */
  private static boolean isQuotable(char c) {
    return c == '\t' || c >= ' ' && c <= '~' || c >= 0x80 && c <= 0xFF;
  }
}
