package dev.idemgate.idempotency;

import io.vertx.core.json.Json;
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
    try {
      MessageDigest digest = MessageDigest.getInstance("SHA-256");
      return HexFormat.of().formatHex(digest.digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-256", e);
    }
  }

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
    } else if (value instanceof String || value instanceof Boolean || value == null) {
      out.append(Json.encode(value));
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
      out.append(Json.encode(String.valueOf(e.getKey()))).append(':');
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

  /** 1999, 1999.0 and 1.999e3 are one number: written as the shortest plain decimal. */
  private static String canonicalNumber(Number number) {
    BigDecimal d = number instanceof BigDecimal b ? b : new BigDecimal(number.toString());
    d = d.stripTrailingZeros();
    return d.scale() < 0 ? d.setScale(0).toPlainString() : d.toPlainString();
  }
}
