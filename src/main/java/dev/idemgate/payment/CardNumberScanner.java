package dev.idemgate.payment;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Finds card numbers anywhere in a request body: a run of 13-19 digits (single spaces or dashes
 * between digits allowed, as people type them) that passes the Luhn check, in any string or number,
 * at any depth, in keys as well as values. Reports only where it was found, never what.
 */
public final class CardNumberScanner {
  private CardNumberScanner() {}

  /** The JSON path of the first field that holds a card number, if any. */
  public static Optional<String> findCardNumber(Object json) {
    return scan(json, "$");
  }

  private static Optional<String> scan(Object value, String path) {
    if (value instanceof JsonObject object) {
      return scanMap(object.getMap(), path);
    } else if (value instanceof Map<?, ?> map) {
      return scanMap(map, path);
    } else if (value instanceof JsonArray array) {
      return scanList(array.getList(), path);
    } else if (value instanceof List<?> list) {
      return scanList(list, path);
    } else if (value instanceof String || value instanceof Number) {
      return containsCardNumber(value.toString()) ? Optional.of(path) : Optional.empty();
    }
    return Optional.empty();
  }

  private static Optional<String> scanMap(Map<?, ?> map, String path) {
    for (Map.Entry<?, ?> e : map.entrySet()) {
      String key = String.valueOf(e.getKey());
      String child = path + "." + (containsCardNumber(key) ? "<redacted>" : key);
      if (containsCardNumber(key)) {
        return Optional.of(child);
      }
      Optional<String> found = scan(e.getValue(), child);
      if (found.isPresent()) {
        return found;
      }
    }
    return Optional.empty();
  }

  private static Optional<String> scanList(List<?> list, String path) {
    for (int i = 0; i < list.size(); i++) {
      Optional<String> found = scan(list.get(i), path + "[" + i + "]");
      if (found.isPresent()) {
        return found;
      }
    }
    return Optional.empty();
  }

  /** True when the text holds a Luhn-valid run of 13-19 digits. */
  public static boolean containsCardNumber(String text) {
    int n = text.length();
    int[] digits = new int[19];
    int i = 0;
    while (i < n) {
      if (!isDigit(text.charAt(i))) {
        i++;
        continue;
      }
      int count = 0;
      boolean tooLong = false;
      int j = i;
      while (j < n) {
        char c = text.charAt(j);
        if (isDigit(c)) {
          if (count >= 19) {
            tooLong = true;
          } else {
            digits[count] = c - '0';
          }
          count++;
          j++;
        } else if ((c == ' ' || c == '-') && j + 1 < n && isDigit(text.charAt(j + 1)) && j > i) {
          j++;
        } else {
          break;
        }
      }
      if (!tooLong && count >= 13 && luhn(digits, count)) {
        return true;
      }
      i = j;
    }
    return false;
  }

  private static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }

  private static boolean luhn(int[] digits, int count) {
    int sum = 0;
    for (int k = 0; k < count; k++) {
      int d = digits[count - 1 - k];
      if (k % 2 == 1) {
        d *= 2;
        if (d > 9) {
          d -= 9;
        }
      }
      sum += d;
    }
    return sum % 10 == 0;
  }
}
