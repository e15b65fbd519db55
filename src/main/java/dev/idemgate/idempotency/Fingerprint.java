package dev.idemgate.idempotency;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * SHA-256 over the operation name and the canonical JSON of the request body: object keys sorted,
 * no insignificant white space, numbers in one form. Two requests that mean the same payment have
 * the same fingerprint whatever their key order or spacing, and whichever route alias they used.
 */
public final class Fingerprint {
  private Fingerprint() {}

  /** Hex SHA-256 of {@code operation + "\n" + canonical(body)}. */
  public static String of(String operation, JsonObject body) {
    return sha256Hex(operation + "\n" + canonicalJson(body));
  }

  public static String sha256Hex(String text) {
    return sha256Hex(text.getBytes(StandardCharsets.UTF_8));
  }

  public static String sha256Hex(byte[] bytes) {
    MessageDigest digest = SHA_256.get();
    return HEX.formatHex(digest.digest(bytes)); // digest() also resets it for the next use
  }

  /** One digest per thread: looking the algorithm up costs more than hashing a small body. */
  private static final ThreadLocal<MessageDigest> SHA_256 = ThreadLocal.withInitial(() -> {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-256", e);
    }
  });
  private static final HexFormat HEX = HexFormat.of();

  public static String canonicalJson(Object value) {
    StringBuilder out = new StringBuilder(256);
    write(out, value);
    return out.toString();
  }

  private static void write(StringBuilder out, Object value) {
    if (value instanceof JsonObject object) {
      writeObject(out, object.getMap());
    } else if (value instanceof Map<?, ?> map) {
      writeObject(out, map);
    } else if (value instanceof JsonArray array) {
      writeArray(out, array.getList());
    } else if (value instanceof List<?> list) {
      writeArray(out, list);
    } else if (value instanceof Number number) {
      out.append(canonicalNumber(number));
    } else if (value instanceof String text) {
      writeString(out, text);
    } else if (value instanceof Boolean || value == null) {
      out.append(value);
    } else {
      throw new IllegalArgumentException("not a JSON value: " + value.getClass().getSimpleName());
    }
  }

  private static void writeObject(StringBuilder out, Map<?, ?> map) {
    out.append('{');
    boolean first = true;
    for (Map.Entry<?, ?> e : new TreeMap<>(map).entrySet()) {
      if (!first) {
        out.append(',');
      }
      first = false;
      writeString(out, String.valueOf(e.getKey()));
      out.append(':');
      write(out, e.getValue());
    }
    out.append('}');
  }

  private static void writeArray(StringBuilder out, List<?> list) {
    out.append('[');
    for (int i = 0; i < list.size(); i++) {
      if (i > 0) {
        out.append(',');
      }
      write(out, list.get(i));
    }
    out.append(']');
  }

  /**
   * A JSON string exactly as Jackson (Vert.x's {@code Json.encode}) writes it, which fingerprints
   * stored before this method existed were made with: quote and backslash escaped, control
   * characters as the short escapes \b \t \n \f \r or else as a six-character escape (backslash,
   * u, 00, two upper-case hex digits), everything else (non-ASCII included) as is. FingerprintTest
   * compares the two on every char.
   */
  static void writeString(StringBuilder out, String text) {
    out.append('"');
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c >= 0x20) {
        out.append(c);
      } else if (c == '\b') {
        out.append("\\b");
      } else if (c == '\t') {
        out.append("\\t");
      } else if (c == '\n') {
        out.append("\\n");
      } else if (c == '\f') {
        out.append("\\f");
      } else if (c == '\r') {
        out.append("\\r");
      } else {
        out.append("\\u00").append(UPPER_HEX.charAt(c >> 4)).append(UPPER_HEX.charAt(c & 0xF));
      }
    }
    out.append('"');
  }

  private static final String UPPER_HEX = "0123456789ABCDEF";

  /** 1999, 1999.0 and 1.999e3 are one number: written as the shortest plain decimal. */
  private static String canonicalNumber(Number number) {
    if (number instanceof Integer || number instanceof Long || number instanceof Short || number instanceof Byte) {
      return Long.toString(number.longValue()); // what the decimal path below gives for any integer
    }
    BigDecimal d = number instanceof BigDecimal b ? b : new BigDecimal(number.toString());
    d = d.stripTrailingZeros();
    return d.scale() < 0 ? d.setScale(0).toPlainString() : d.toPlainString();
  }
}
