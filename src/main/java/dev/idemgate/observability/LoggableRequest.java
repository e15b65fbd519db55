package dev.idemgate.observability;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.payment.CardNumberScanner;

/**
 * A request's method and path as what leaves the process may hold them (access lines, trace spans):
 * both are whatever a client sent, up to the 4 KiB of a request line, and a misbehaving client may
 * put a card number in either, or a credential ({@link CredentialScanner}: its API key, any key in
 * force, the admin token), kept as {@code redacted:api_key} or {@code redacted:admin_token}.
 */
public final class LoggableRequest {
  /** The most of a path kept. */
  public static final int MAX_PATH = 256;
  /** The most of a method kept: the longest registered method has 17 characters. */
  public static final int MAX_METHOD = 32;

  private LoggableRequest() {}

  /**
   * A path cut to {@link #MAX_PATH} characters, or {@link CardNumberScanner#REDACTED} when it holds a card
   * number, or what a credential in it is kept as.
   *
   * @param presented the credential the request carries (its bearer token), null if none or unknown
   */
  public static String path(String path, CredentialScanner credentials, String presented) {
    return path == null ? null : kept(path, MAX_PATH, credentials, presented);
  }

  /**
   * A method cut to {@link #MAX_METHOD} characters, or {@link CardNumberScanner#REDACTED} when it
   * holds a card number: HTTP lets a method be any token, and the decoder hands on whatever a client
   * sent in its place.
   */
  public static String method(String method, CredentialScanner credentials, String presented) {
    // The methods every request uses are shorter than any credential: no scan for them.
    return method == null ? null : kept(method, MAX_METHOD, credentials, presented);
  }

  private static String kept(String text, int max, CredentialScanner credentials, String presented) {
    // The whole text is scanned, not only what is kept: a cut could leave a card number's digits behind,
    // or a key's first characters.
    String redacted = redaction(text, credentials, presented);
    return redacted != null ? redacted : text.length() > max ? text.substring(0, max) : text;
  }

  /**
   * What a text a client sent is logged or kept as when it holds a secret: {@code redacted:card_number},
   * or a credential's {@code redacted:…} ({@link CredentialScanner#find}); null when it holds none.
   * The one check of every such text: a method, a path, a URL, a forwarded request id, a client id.
   */
  public static String redaction(String text, CredentialScanner credentials, String presented) {
    if (CardNumberScanner.containsCardNumber(text)) {
      return CardNumberScanner.REDACTED;
    }
    CredentialScanner.Credential credential = credentials.find(text, presented);
    return credential == null ? null : credential.redacted();
  }
}
