package dev.idemgate.payment;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;
import java.util.regex.MatchResult;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds card numbers anywhere in a request body: 13-19 digits that pass the Luhn check, written in
 * one run or in the groupings cards are printed with, in any string or number, at any depth, in
 * keys as well as values. Reports only where it was found, never what.
 */
public final class CardNumberScanner {
  private CardNumberScanner() {}

  /** The JSON path of the first field that holds a card number, if any. */
  public static Optional<String> findCardNumber(Object json) {
    return Optional.ofNullable(scan(json, Path.ROOT)).map(Path::render);
  }

  /**
   * Where the scan is: {@code $}, then {@code .name} or {@code [index]} per level. Rendered only for
   * the field found: a path string built for every member would copy its parent's path each time,
   * and a body of one long name holding a long array (under 64 KiB) would allocate hundreds of
   * megabytes per request.
   */
  private record Path(Path parent, String segment) {
    static final Path ROOT = new Path(null, "$");

    Path member(String name) {
      return new Path(this, "." + name);
    }

    Path element(int index) {
      return new Path(this, "[" + index + "]");
    }

    String render() {
      return parent == null ? segment : parent.render() + segment;
    }
  }

  /** The path of the first field at or under {@code value} that holds a card number, or null. */
  private static Path scan(Object value, Path path) {
    if (value instanceof JsonObject object) {
      return scanMap(object.getMap(), path);
    } else if (value instanceof Map<?, ?> map) {
      return scanMap(map, path);
    } else if (value instanceof JsonArray array) {
      return scanList(array.getList(), path);
    } else if (value instanceof List<?> list) {
      return scanList(list, path);
    } else if (value instanceof String || value instanceof Number) {
      return containsCardNumber(value.toString()) ? path : null;
    }
    return null;
  }

  private static Path scanMap(Map<?, ?> map, Path path) {
    for (Map.Entry<?, ?> e : map.entrySet()) {
      String key = String.valueOf(e.getKey());
      if (containsCardNumber(key)) {
        return path.member("<redacted>");
      }
      Path found = scan(e.getValue(), path.member(key));
      if (found != null) {
        return found;
      }
    }
    return null;
  }

  private static Path scanList(List<?> list, Path path) {
    for (int i = 0; i < list.size(); i++) {
      Path found = scan(list.get(i), path.element(i));
      if (found != null) {
        return found;
      }
    }
    return null;
  }

  /**
   * What a text holding a card number is kept or logged as where no card number may be: a client
   * id in Redis and on the admin view, an access line's path or forwarded request id.
   */
  public static final String REDACTED = "redacted:card_number";

  /**
   * True when the text holds a Luhn-valid card number: 13-19 digits in one run, or grouped the way
   * card numbers are printed (4-4-4-4, 4-4-4-4-1..3, 4-6-5, 4-6-4), all groups joined by the same
   * kind of separator: white space (one to three of space, tab, or a space of any other width, as
   * typing and copy-paste leave them), or one dash (of any kind: en dash, minus sign …), dot or
   * slash, read in the {@link #folded} text: digits of any script count, and characters that do
   * not show are read as absent. Other groupings (UUIDs, phone
   * numbers, order ids) are not card numbers: reading any digits joined by dashes as one number
   * would refuse about one payment in a thousand whose reference is a random UUID, and a 4-4-4-4 run
   * inside a UUID's hex groups one in 21,000, so digits inside a UUID (or one cut short after its
   * fourth group) never count; nor do those of one of the gateway's payment or request ids (one in 800
   * and one in 2,100 hold a Luhn-valid run), nor of an IBAN, printed or not, one in ten of which read
   * as a card. A card followed by its CVV or expiry in the same grouping counts; a long number printed
   * in fours (a parcel or account number) does not.
   */
  public static boolean containsCardNumber(String text) {
    return containsCardNumber(text, false);
  }

  /**
   * {@link #containsCardNumber}, counting only a card whose first digits are a card network's
   * ({@link #networkPrefix}): the check of a reconciliation file's name. Names are often made of a
   * time (epoch milliseconds, 13 digits; {@code yyyyMMddHHmmssSSS}, 17), one in ten of them
   * Luhn-valid. (Not the check of an {@code Idempotency-Key}, which is not looked at for cards: a
   * random 19-digit key is still refused here about one time in 25.) A time written as epoch milliseconds (or micro-, nanoseconds) starts with 1
   * until 2033 and with 20 or 21 until 2039-09-18, one in {@code yyyyMMdd…} with 19, 20 or 21 until 2200:
   * neither is a card network's.
   */
  public static boolean containsIssuedCardNumber(String text) {
    return containsCardNumber(text, true);
  }

  private static boolean containsCardNumber(String text, boolean networkPrefixOnly) {
    text = folded(text);
    int n = text.length();
    int i = 0;
    // Made at the first digit only: most strings hold none.
    int[] groups = null;
    int[] groupEnds = null;
    StringBuilder digits = null;
    while (i < n) {
      if (!isDigit(text.charAt(i)) || (i > 0 && isDigit(text.charAt(i - 1)))) {
        i++;
        continue;
      }
      // Read groups of digits joined by one separator character, the same one throughout.
      if (groups == null) {
        groups = new int[8];
        groupEnds = new int[8];
        digits = new StringBuilder(24);
      }
      int groupCount = 0;
      digits.setLength(0);
      char separator = 0;
      boolean lastGroupStartsAnother = false;
      int j = i;
      while (j < n && groupCount < groups.length) {
        int start = j;
        while (j < n && isDigit(text.charAt(j))) {
          digits.append(text.charAt(j));
          j++;
        }
        groupEnds[groupCount] = j;
        groups[groupCount++] = j - start;
        int next = separatorEnd(text, j);
        char kind = next < 0 ? 0 : separatorKind(text.charAt(j));
        if (next > 0 && next < n && isDigit(text.charAt(next)) && (separator == 0 || separator == kind)) {
          separator = kind;
          j = next;
        } else {
          // Another kind of separator ends this grouping; its last group may begin the next one
          // (2024 4242-4242-4242-4242).
          lastGroupStartsAnother = next > 0 && next < n && isDigit(text.charAt(next));
          break;
        }
      }
      // The card may be the whole run of groups or its first groups, followed by a CVV or an expiry
      // in the same grouping (4242 4242 4242 4242 123, 4111111111111111 12/30).
      int candidateDigits = 0;
      for (int count = 1; count <= groupCount; count++) {
        candidateDigits += groups[count - 1];
        if (isCardShaped(groups, count, candidateDigits)
            && onlyCvvOrExpiryAfter(digits, groups, count, groupCount, candidateDigits)
            && luhn(digits, candidateDigits) && (!networkPrefixOnly || networkPrefix(digits))
            && !insideReference(text, i, groupEnds[count - 1])) {
          return true;
        }
      }
      // Always past i: a grouping that another separator ends holds at least two groups.
      int lastGroupStart = groupEnds[groupCount - 1] - groups[groupCount - 1];
      i = nextStart(groups, groupEnds, groupCount, lastGroupStartsAnother && groupCount > 1 ? lastGroupStart : j);
    }
    return false;
  }

  /**
   * Where to look for a card next: a grouping can start inside a longer run (12 4242 4242 4242 4242),
   * but right after a group of four only when four such groups come before it (two cards in a row):
   * otherwise the tail of a long number printed in fours (a parcel number 9400 1000 0000 0000 0000 00,
   * an account number) would read as a card one time in ten.
   */
  private static int nextStart(int[] groups, int[] groupEnds, int groupCount, int otherwise) {
    for (int k = 1; k < groupCount; k++) {
      if (groups[k - 1] != 4 || k % 4 == 0) {
        return groupEnds[k] - groups[k];
      }
    }
    return otherwise;
  }

  /**
   * Whether the groups after the first {@code count} can be a card's CVV and expiry, in either order,
   * either or both: none (the card is the whole run); a CVV of three digits (or four after the 4-6-5
   * grouping, Amex's CID); an expiry as a month then a year (9 27, 12 2030) or a lone month (its year
   * after another separator: 12/30). Other trailing groups make a longer number that is not a card
   * (a 4-4-4-4-4 or 4-4-4-4-4-2 parcel number, say; hence no MMYY group either). A single run of
   * 13-19 digits is a card whatever follows it, as it is on its own.
   *
   * @param after where in {@code digits} the groups after the first {@code count} begin
   */
  private static boolean onlyCvvOrExpiryAfter(CharSequence digits, int[] groups, int count, int groupCount,
      int after) {
    if (count == 1 || count == groupCount) {
      return true;
    }
    boolean amex = count == 3 && groups[2] == 5;
    int k = count + expiryGroups(digits, groups, count, after, groupCount);
    if (k < groupCount && isCvv(groups[k], amex)) {
      k++;
    }
    if (k == groupCount) {
      return true;
    }
    // A CVV first, then an expiry (a CVV that looks like a month was taken for one above).
    return isCvv(groups[count], amex)
        && count + 1 + expiryGroups(digits, groups, count + 1, after + groups[count], groupCount) == groupCount;
  }

  private static boolean isCvv(int length, boolean amex) {
    return length == 3 || amex && length == 4;
  }

  /**
   * How many groups from group {@code k}, which begins at {@code at} in {@code digits}, an expiry
   * takes (a month then a year, a month alone), 0 if none.
   */
  private static int expiryGroups(CharSequence digits, int[] groups, int k, int at, int groupCount) {
    if (k >= groupCount || !isMonth(digits, at, groups[k])) {
      return 0;
    }
    return k + 1 < groupCount && (groups[k + 1] == 2 || groups[k + 1] == 4) ? 2 : 1;
  }

  /** 1-9 or 01-12. */
  private static boolean isMonth(CharSequence digits, int at, int length) {
    char first = digits.charAt(at);
    if (length == 1) {
      return first != '0';
    }
    if (length != 2) {
      return false;
    }
    char second = digits.charAt(at + 1);
    return first == '0' ? second != '0' : first == '1' && second <= '2';
  }

  /**
   * Whether {@code text[from, to)} lies inside a UUID, one of the gateway's own ids or an IBAN.
   * A UUID's hex groups can leave a digits-only 4-4-4-4 run (…c9057-2948-4795-8644-cfe…), a payment
   * or request id a run of 13-19 digits (pay_25f99578e2f44da28706087292934bfe), a printed IBAN a
   * 4-4-4-4-2 one (DE80 2648 4756 4696 0623 07), and an unspaced IBAN of a dozen countries a run of
   * 13-19 digits (BE68539007547034): none is a card. Checked last, so only on a Luhn-valid candidate.
   *
   * <p>Only the starts from which a reference could reach over the candidate are tried: searched
   * from the start of the text each time, a field of 64 KiB made of UUIDs that each hold a Luhn-valid
   * run cost a search of the whole field per run, quadratic work on the event loop for one request.
   * Each start is tried on its own, not by searching on from a point before the candidate: matches
   * found that way depend on where the search began (an IBAN-like run of groups ending inside the
   * real IBAN would hide it).
   */
  private static boolean insideReference(String text, int from, int to) {
    return coveredFrom(UUID.matcher(text), UUID_LENGTH, text, from, to, uuid -> true)
        || coveredFrom(OWN_ID.matcher(text), OWN_ID_MAX_LENGTH, text, from, to, id -> true)
        || coveredFrom(IBAN.matcher(text), IBAN_MAX_LENGTH, text, from, to,
            iban -> checkedIbanCovers(text, iban.start(), iban.end(), to));
  }

  /**
   * A UUID, or one cut short anywhere after its fourth group: references are often truncated to a
   * column's width, and the cut leaves the same hex groups, whose digits read as a 4-4-4-4 card (with
   * a Luhn-valid run about once in 20,000 random cuts). Its first group of eight is what no printed
   * card has: a card's first four digits glued to four more hex characters.
   */
  private static final Pattern UUID = Pattern.compile(
      "(?<![0-9A-Fa-f])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}(?:-[0-9A-Fa-f]{0,12})?(?![0-9A-Fa-f])");
  private static final int UUID_LENGTH = 36;

  /**
   * One of the gateway's own ids: a payment id ({@link PaymentJson#newPaymentId}), whose 32 hex digits
   * hold a Luhn-valid run of 13-19 digits about once in 800 ids, or a request id
   * ({@code RequestIds.newId}: 16 hex digits, once in 2,100). An access line's path naming such a
   * payment (/admin/pending/pay_…/resolve) was logged as a card, a note or reference naming it
   * refused, and such a request id forwarded back as {@code X-Request-Id} logged as a card.
   */
  public static final String OWN_ID_REGEX = "(?<![0-9A-Za-z_])(?:pay_[0-9a-f]{32}|req_[0-9a-f]{16})(?![0-9A-Za-z])";
  private static final Pattern OWN_ID = Pattern.compile(OWN_ID_REGEX);
  private static final int OWN_ID_MAX_LENGTH = 36;

  /** An IBAN as printed: country, check digits, then groups of four (the last shorter), spaced or not. */
  private static final Pattern IBAN = Pattern.compile(
      "(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?(?![A-Za-z0-9])");
  /** The longest text {@link #IBAN} matches: 4 + 7 x 5 + 4. */
  private static final int IBAN_MAX_LENGTH = 43;

  /**
   * Whether a match of {@code m}'s pattern that {@code accept} takes (an IBAN must pass its own check,
   * so that a card glued to two letters and two digits still counts) starts at one of the places
   * from which it could cover {@code [from, to)}, and covers it. Transparent bounds let the
   * look-behind and look-ahead see past the region, so each try reads as it would in the whole text.
   */
  private static boolean coveredFrom(Matcher m, int maxLength, String text, int from, int to,
      Predicate<MatchResult> accept) {
    m.useTransparentBounds(true);
    for (int start = Math.max(0, to - maxLength); start <= from; start++) {
      m.region(start, Math.min(text.length(), start + maxLength));
      if (m.lookingAt() && to <= m.end() && accept.test(m)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Whether some IBAN starting at {@code start} and ending before {@code end}, at the end of one of
   * its printed groups, reaches {@code to} and passes ISO 13616's check (country and check digits
   * moved to the end, letters as 10-35, mod 97 is 1). The pattern can take a word after the IBAN for
   * one more group ({@code AT61 1904 3002 3457 3201 EUR}), hence every group end is tried.
   */
  private static boolean checkedIbanCovers(String text, int start, int end, int to) {
    int remainder = 0;
    int length = 4;
    for (int k = start + 4; k < end; k++) {
      char c = text.charAt(k);
      if (c == ' ') {
        continue;
      }
      remainder = mod97(remainder, c);
      length++;
      boolean groupEnd = k + 1 == end || text.charAt(k + 1) == ' ';
      if (groupEnd && k + 1 >= to && length >= 15 && length <= 34) {
        int withHead = remainder;
        for (int h = start; h < start + 4; h++) {
          withHead = mod97(withHead, text.charAt(h));
        }
        if (withHead == 1) {
          return true;
        }
      }
    }
    return false;
  }

  /** The remainder mod 97 after appending one IBAN character (a letter counts as two digits, 10-35). */
  private static int mod97(int remainder, char c) {
    int value = Character.digit(c, 36);
    return (value > 9 ? remainder * 100 + value : remainder * 10 + value) % 97;
  }

  /** Where a separator starting at {@code at} ends, or -1 if none starts there. */
  private static int separatorEnd(String text, int at) {
    if (at >= text.length()) {
      return -1;
    }
    char c = text.charAt(at);
    if (c == '-' || c == '.' || c == '/') {
      return at + 1;
    }
    int end = at;
    while (end < text.length() && end - at < 3 && isSpace(text.charAt(end))) {
      end++;
    }
    return end > at ? end : -1;
  }

  /** Every run of white space is one kind of separator; each punctuation mark is its own. */
  private static char separatorKind(char first) {
    return isSpace(first) ? ' ' : first;
  }

  private static boolean isSpace(char c) {
    return c == ' ' || c == '\t';
  }

  /**
   * The text as the scan reads it: ASCII text as it is; in any other, each digit of any script
   * (full-width ４, Arabic-Indic ٤, mathematical 𝟒 …) as its ASCII digit, each dash (en dash, minus
   * sign, full-width hyphen …) as '-', each space of any width as ' ', and every character that does
   * not show (Unicode format characters: soft hyphen, zero-width space and joiners, direction
   * marks, the byte-order mark) left out, wherever it is. What a person reads as a card is then
   * read as one.
   */
  static String folded(String text) {
    int n = text.length();
    int k = 0;
    while (k < n && text.charAt(k) < 0x80) {
      k++;
    }
    if (k == n) {
      return text;
    }
    StringBuilder folded = new StringBuilder(n).append(text, 0, k);
    for (int i = k; i < n; ) {
      int c = text.codePointAt(i);
      i += Character.charCount(c);
      if (c < 0x80) {
        folded.append((char) c);
      } else if (Character.isDigit(c)) {
        folded.append((char) ('0' + Character.digit(c, 10)));
      } else if (Character.getType(c) == Character.FORMAT || c == 0x200b) {
        continue; // not shown: read as absent
      } else if (Character.getType(c) == Character.DASH_PUNCTUATION || c == 0x2212) {
        folded.append('-');
      } else if (Character.isSpaceChar(c)) {
        folded.append(' ');
      } else {
        folded.appendCodePoint(c);
      }
    }
    return folded.toString();
  }

  /**
   * Whether digits begin as a card network's numbers do: 3 (American Express, Diners Club, JCB), 4
   * (Visa), 5 (Mastercard, Maestro), 6 (Discover, UnionPay, Maestro, RuPay), 2200-2204 (Mir) or
   * 2221-2720 (Mastercard). Not 1 (airlines' UATP), 7 to 9 (fuel, health, national cards) nor the
   * rest of 2, where times written as numbers begin (epoch time to 2039, years to 2199).
   */
  private static boolean networkPrefix(CharSequence digits) {
    char first = digits.charAt(0);
    if (first >= '3' && first <= '6') {
      return true;
    }
    if (first != '2') {
      return false;
    }
    int four = 0;
    for (int k = 0; k < 4; k++) {
      four = four * 10 + (digits.charAt(k) - '0');
    }
    return (four >= 2200 && four <= 2204) || (four >= 2221 && four <= 2720);
  }

  private static boolean isCardShaped(int[] g, int count, int total) {
    if (total < 13 || total > 19) {
      return false;
    }
    if (count == 1) {
      return true;
    }
    if (count == 4 && g[0] == 4 && g[1] == 4 && g[2] == 4 && g[3] == 4) {
      return true;
    }
    if (count == 5 && g[0] == 4 && g[1] == 4 && g[2] == 4 && g[3] == 4 && g[4] <= 3) {
      return true;
    }
    return count == 3 && g[0] == 4 && g[1] == 6 && (g[2] == 5 || g[2] == 4);
  }

  private static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }

  /** The Luhn check of the first {@code count} digits. */
  private static boolean luhn(CharSequence digits, int count) {
    int sum = 0;
    for (int k = 0; k < count; k++) {
      int d = digits.charAt(count - 1 - k) - '0';
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
