package dev.idemgate.auth;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.Fingerprint;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The format of {@code api_keys_file}: one {@code merchant=sha256:<64 hex digits>} per line, the
 * SHA-256 of the API key; blank lines and lines starting with {@code #} are ignored. A merchant may
 * have several lines (the old and the new key while a key is rotated).
 *
 * <p>Only hashes are kept: API keys are long random strings, so SHA-256 alone cannot be reversed
 * or guessed, and a lookup by hash says nothing about near-miss keys through its timing.
 * Hazard: an error names the line number, never the line: a line that does not parse may be a
 * key pasted in plain text, and error messages end up in logs.
 */
public final class ApiKeyFile {
  static final String HASH_PREFIX = "sha256:";
  private static final Pattern HEX_64 = Pattern.compile("[0-9a-fA-F]{64}");
  /** The UTF-8 byte order mark some editors put first (Notepad, PowerShell's Out-File): not part of line 1. */
  private static final String BYTE_ORDER_MARK = "\uFEFF";

  private ApiKeyFile() {}

  /** The file's text could not be taken as a whole; the message names the line. */
  public static final class InvalidApiKeyFile extends IllegalArgumentException {
    InvalidApiKeyFile(int line, String problem) {
      super("line " + line + ": " + problem);
    }
  }

  /**
   * Returns the SHA-256 (lowercase hex) of each key to its merchant id.
   *
   * @throws InvalidApiKeyFile at the first line that does not parse, or a hash given to two merchants
   */
  public static Map<String, String> parse(String text) {
    Map<String, String> merchantByHash = new HashMap<>();
    String[] lines = withoutByteOrderMark(text).split("\r?\n", -1);
    for (int i = 0; i < lines.length; i++) {
      String line = lines[i].strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      int number = i + 1;
      int eq = line.indexOf('=');
      String merchant = eq < 0 ? "" : line.substring(0, eq).strip();
      String value = eq < 0 ? "" : line.substring(eq + 1).strip();
      if (!GatewayConfig.MERCHANT_ID.matcher(merchant).matches()) {
        throw new InvalidApiKeyFile(number, "expected merchant=sha256:<64 hex digits>, the merchant being 1-64 of "
            + "A-Z a-z 0-9 _ . -");
      }
      if (!value.regionMatches(true, 0, HASH_PREFIX, 0, HASH_PREFIX.length())
          || !HEX_64.matcher(value.substring(HASH_PREFIX.length())).matches()) {
        throw new InvalidApiKeyFile(number, "the key of merchant " + merchant + " must be given as sha256:<64 hex "
            + "digits>, its SHA-256, never in plain text (idemgate api-key prints the line)");
      }
      String hash = value.substring(HASH_PREFIX.length()).toLowerCase(Locale.ROOT);
      String before = merchantByHash.putIfAbsent(hash, merchant);
      if (before != null && !before.equals(merchant)) {
        throw new InvalidApiKeyFile(number, "this key is already given to merchant " + before);
      }
    }
    return Map.copyOf(merchantByHash);
  }

  /** Whether the file's text holds nothing at all: only white space, or a byte order mark alone. */
  public static boolean isBlank(String text) {
    return withoutByteOrderMark(text).isBlank();
  }

  private static String withoutByteOrderMark(String text) {
    return text.startsWith(BYTE_ORDER_MARK) ? text.substring(BYTE_ORDER_MARK.length()) : text;
  }

  /** The SHA-256 of an API key, as the file and the lookup keep it. */
  public static String hash(String apiKey) {
    return Fingerprint.sha256Hex(apiKey);
  }

  /** The file's line that gives {@code apiKey} to {@code merchant}. */
  public static String line(String merchant, String apiKey) {
    if (!GatewayConfig.MERCHANT_ID.matcher(merchant).matches()) {
      throw new IllegalArgumentException("a merchant id is 1-64 of A-Z a-z 0-9 _ . -");
    }
    return merchant + "=" + HASH_PREFIX + hash(apiKey);
  }
}
