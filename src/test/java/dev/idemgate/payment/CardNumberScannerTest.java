package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class CardNumberScannerTest {
  @Test
  @DisplayName("Luhn-valid 13-19 digit numbers are found, typed plainly, with spaces or with dashes")
  void findsCardNumbers() {
    assertThat(CardNumberScanner.containsCardNumber("4111111111111111")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("card 4242 4242 4242 4242 exp 12/30")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("5555-5555-5555-4444")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("378282246310005")).isTrue();
  }

  @Test
  @DisplayName("numbers that fail Luhn, are too short or too long are not card numbers")
  void ignoresOtherNumbers() {
    assertThat(CardNumberScanner.containsCardNumber("4111111111111112")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("order-123456789012")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("41111111111111111111111")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("1000000000000")).isFalse();
  }

  @Test
  @DisplayName("digits grouped unlike a card (UUIDs, phone numbers) are not card numbers, even when they pass Luhn")
  void otherGroupingsAreNotCards() {
    // 4111-1111-1111-1111 regrouped as 8-8: Luhn-valid digits, not a card's shape.
    assertThat(CardNumberScanner.containsCardNumber("41111111-11111111")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("order-12345678-1234-1234-1234-123456789012")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("+1 415 555 2671 ext 1234")).isFalse();
    // A UUID's hex groups can leave a digits-only 4-4-4-4 run that passes Luhn: about one random
    // UUID in 21,000 was refused as a card before digits inside a UUID stopped counting.
    assertThat(CardNumberScanner.containsCardNumber("order-638c9057-2948-4795-8644-cfe5f53e033c")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("order-12345678-9057-2948-4795-8644cfe5f53e")).isFalse();
    // 1,000,000 random UUIDs: none may be refused as a card.
    java.util.Random random = new java.util.Random(42);
    assertThat(refusedAmong(1_000_000, () -> "order-" + new java.util.UUID(random.nextLong(), random.nextLong()))).isEmpty();
  }

  @Test
  @DisplayName("a UUID cut short after its fourth group (a reference truncated to a column's width) is not a card")
  void truncatedUuidsAreNotCards() {
    // Found by a probe: 6791-8628-4906-8917 is Luhn-valid, and the cut removed the UUID's last character.
    assertThat(CardNumberScanner.containsCardNumber("ld-7-b02a6791-8628-4906-8917-082cea9b38a")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("ld-7-b02a6791-8628-4906-8917-")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("ld-7-b02a6791-8628-4906-8917")).isFalse();
    // 1,000,000 random UUIDs cut after 23 to 35 characters: none may be refused as a card.
    java.util.Random random = new java.util.Random(7);
    assertThat(refusedAmong(1_000_000, () -> "order-"
        + new java.util.UUID(random.nextLong(), random.nextLong()).toString().substring(0, 23 + random.nextInt(13))))
        .isEmpty();
    // A card after a group of four hex letters that are no UUID's is still a card.
    assertThat(CardNumberScanner.containsCardNumber("beef 4111-1111-1111-1111")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("VISA4111-1111-1111-1111")).isTrue();
  }

  @Test
  @DisplayName("a payment id of the gateway's own (pay_ and 32 hex digits) is not a card, though its digits may hold "
      + "a Luhn-valid run; a card beside it or glued to a shorter pay_ still is")
  void paymentIdsAreNotCards() {
    // 28706087292934 is Luhn-valid: the access line of an admin verdict on this payment logged its
    // path as redacted:card_number, and a note or merchant_reference naming it was refused.
    String id = "pay_25f99578e2f44da28706087292934bfe";
    assertThat(PaymentJson.isPaymentId(id)).isTrue();
    assertThat(CardNumberScanner.containsCardNumber(id)).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("/admin/pending/" + id + "/resolve")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("refunded " + id + " by hand")).isFalse();
    // 1,000,000 ids as the gateway mints them: none may be taken for a card.
    assertThat(refusedAmong(1_000_000, () -> PaymentJson.newPaymentId(java.time.Instant.now()))).isEmpty();
    assertThat(CardNumberScanner.containsCardNumber(id + " 4111 1111 1111 1111")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("pay_4111111111111111")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("pay_25f99578e2f44da28706087292934bfe0")).as("33 hex digits: no payment id")
        .isTrue();
  }

  @Test
  @DisplayName("a card number written against letters (VISA4111-…, カード番号4111 …) is found; digits inside a UUID are not a card")
  void cardsAgainstLettersButNotInUuids() {
    assertThat(CardNumberScanner.containsCardNumber("VISA4111-1111-1111-1111")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("カード番号4111-1111-1111-1111です")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4111 1111 1111 1111exp 12/30")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("Amex3782 822463 10005")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("bad-638c9057-2948-4795-8644-cfe5f53e033c")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("638C9057-2948-4795-8644-CFE5F53E033C")).isFalse();
  }

  @Test
  @DisplayName("references far into a 64 KiB field are still recognised around each Luhn-valid run, and a card after them is still found")
  void referencesFarIntoALongField() {
    // Each UUID holds the Luhn-valid run 4242-4242-4242-4242: the UUID and IBAN searches are made
    // around each run (about 1,800 of them here), no longer from the start of the field each time.
    String uuids = "abcdefab-4242-4242-4242-4242abcdefab ".repeat(1_800);
    assertThat(uuids.length()).isGreaterThan(64_000);
    assertThat(CardNumberScanner.containsCardNumber(uuids)).isFalse();
    assertThat(CardNumberScanner.containsCardNumber(uuids + "IBAN DE80 2648 4756 4696 0623 07")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber(uuids + "BE68539007547034")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber(uuids + "card 4111 1111 1111 1111")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber(uuids + "4242-4242-4242-4242abcdefab")).as("the tail of a UUID alone is no UUID")
        .isTrue();
    // Groups of four before an IBAN read as the start of a longer IBAN-like run that ends inside the
    // real one: the real IBAN is still found, whatever the search began with.
    assertThat(CardNumberScanner.containsCardNumber("AB12 CDEF GH34 KLMN OPQR STUV WXYZ ABCD EFGH DE80 2648 4756 4696 0623 07"))
        .isFalse();
  }

  @Test
  @DisplayName("a printed IBAN is not a card, though one in ten reads as a Luhn-valid 4-4-4-4-2 grouping; a card beside it still is")
  void ibansAreNotCards() {
    assertThat(CardNumberScanner.containsCardNumber("IBAN DE80 2648 4756 4696 0623 07")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("DE80264847564696062307")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("IBAN DE80 2648 4756 4696 0623 07, card 4111 1111 1111 1111")).isTrue();
    java.util.Random random = new java.util.Random(7);
    assertThat(refusedAmong(200_000, () -> "IBAN " + iban("DE", randomDigits(18, random)).replaceAll("(.{4})(?!$)", "$1 "))).isEmpty();
  }

  @Test
  @DisplayName("an IBAN written without spaces is not a card, though a dozen countries' hold 13-19 digits after the letters")
  void unspacedIbansAreNotCards() {
    // Country and digits after it (check digits + all-digit BBAN): BE 14, NO 13, DK/FI 16, SI 17,
    // AT/EE/LT 18, CH/HR 19. Before, one in ten of them passed Luhn as a plain run and was refused.
    String[] countries = {"BE", "NO", "DK", "FI", "SI", "AT", "EE", "LT", "CH", "HR"};
    int[] digitCounts = {14, 13, 16, 16, 17, 18, 18, 18, 19, 19};
    java.util.Random random = new java.util.Random(11);
    assertThat(refusedAmong(200_000, () -> {
      int country = random.nextInt(countries.length);
      return "pay to " + iban(countries[country], randomDigits(digitCounts[country] - 2, random));
    })).isEmpty();
    assertThat(CardNumberScanner.containsCardNumber("pay to BE68539007547034, card 4111111111111111")).isTrue();
    // Two letters and two digits glued to a card make no IBAN unless its check passes.
    assertThat(CardNumberScanner.containsCardNumber("NO4111111111111111")).isTrue();
  }

  @Test
  @DisplayName("a card followed by its CVV or expiry in the same grouping is found (4242 4242 4242 4242 123, … 12/30)")
  void cardFollowedByCvvOrExpiry() {
    // Before, each of these was read as one longer number and found only when that passed Luhn:
    // about nine in ten were missed.
    java.util.Random random = new java.util.Random(5);
    List<String> missed = new ArrayList<>();
    for (int i = 0; i < 10_000; i++) {
      String card = luhnValid("4", 16, random);
      String cvv = String.format("%03d", random.nextInt(1000));
      String expiry = String.format("%02d/%02d", 1 + random.nextInt(12), random.nextInt(100));
      String grouped = card.substring(0, 4) + " " + card.substring(4, 8) + " " + card.substring(8, 12) + " " + card.substring(12);
      String amex = luhnValid("37", 15, random);
      String month = expiry.substring(0, 2);
      for (String text : List.of(grouped + " " + cvv, grouped + " " + expiry, card + " " + cvv, card + " " + expiry,
          grouped + " " + month + " " + expiry.substring(3) + " " + cvv, grouped + " " + cvv + " " + expiry,
          amex.substring(0, 4) + " " + amex.substring(4, 10) + " " + amex.substring(10) + " " + cvv + random.nextInt(10))) {
        if (!CardNumberScanner.containsCardNumber(text)) {
          missed.add(text);
        }
      }
    }
    assertThat(missed).isEmpty();
    assertThat(CardNumberScanner.containsCardNumber("4242 4242 4242 4242 123")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4242-4242-4242-4242-12-30")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("3782 822463 10005 1234")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4242 4242 4242 4242 12 30 123")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4111-1111-1111-1111-12-2030-737")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("cards 4000 0000 0000 0002 4242 4242 4242 4242")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("3056 930902 5904 123")).as("Diners and its CVV").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("3782 822463 10005 0512 12/30")).as("Amex, a CID like a month").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4242 4242 4242 4242 9 27")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4242-4242-4242-4242-9-27")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("2024 4242-4242-4242-4242")).as("after another separator").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("ref 1230 4111-1111-1111-1111")).isTrue();
    // The misses the README names, the price of passing long numbers printed in fours.
    assertThat(CardNumberScanner.containsCardNumber("4242 4242 4242 4242 1230")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("0800 1230 4242 4242 4242 4242")).isFalse();
  }

  @Test
  @DisplayName("an IBAN followed by a word or a BIC is not a card either")
  void ibansFollowedByWords() {
    assertThat(CardNumberScanner.containsCardNumber("AT61 1904 3002 3457 3201 EUR")).isFalse();
    // ES and PL IBANs are 24 and 28 characters, whole groups of four, so a word after one reads as
    // one more group; random ones, printed and followed by a currency or a BIC.
    java.util.Random random = new java.util.Random(13);
    assertThat(refusedAmong(100_000, () -> {
      String iban = random.nextBoolean() ? iban("ES", randomDigits(20, random)) : iban("PL", randomDigits(24, random));
      String printed = random.nextBoolean() ? iban.replaceAll("(.{4})(?!$)", "$1 ") : iban;
      return "pay to " + printed + (random.nextBoolean() ? " EUR" : " BSCHESMM");
    })).isEmpty();
  }

  @Test
  @DisplayName("long numbers printed in fours (20-, 22- and 24-digit parcel and account numbers) are not cards")
  void longNumbersInFoursAreNotCards() {
    // Before, a 4-4-4-4 window anywhere in them was read as a card: one in ten or more was refused.
    java.util.Random random = new java.util.Random(17);
    assertThat(refusedAmong(100_000, () -> {
      int kind = random.nextInt(3);
      String digits = kind == 0 ? "9400" + randomDigits(18, random) : randomDigits(kind == 1 ? 20 : 24, random);
      return "tracking " + digits.replaceAll("(.{4})(?!$)", "$1 ");
    })).isEmpty();
  }

  /** The IBAN of a country and its domestic account number, with the check digits ISO 13616 gives it. */
  private static String iban(String country, String account) {
    java.math.BigInteger number = new java.math.BigInteger(account + (country.charAt(0) - 'A' + 10) + (country.charAt(1) - 'A' + 10) + "00");
    int check = 98 - number.mod(java.math.BigInteger.valueOf(97)).intValue();
    return country + String.format("%02d", check) + account;
  }

  @Test
  @DisplayName("with a card network's first digits only (a reconciliation file's name), texts made of a time are not "
      + "taken for cards, however often their digits pass the Luhn check")
  void cardsWithANetworksFirstDigits() {
    for (String card : List.of("4111111111111111", "order-5555555555554444", "378282246310005", "6011111111111117",
        "2223003122003222", "2200000000000004", "\"4242 4242 4242 4242\"", "3530111333300000")) {
      assertThat(CardNumberScanner.containsIssuedCardNumber(card)).as(card).isTrue();
    }
    java.util.Random random = new java.util.Random(23);
    long millis = 1_000_000_000_000L; // 2001
    java.time.format.DateTimeFormatter stamp = java.time.format.DateTimeFormatter.ofPattern("yyyyMMddHHmmssSSS")
        .withZone(java.time.ZoneOffset.UTC);
    java.util.function.Supplier<String> timeKeys = () -> {
      // Until 2039-09-18, when epoch milliseconds reach 2200000000000, Mir's first digits.
      long at = millis + (long) (random.nextDouble() * 1_200_000_000_000L);
      return switch (random.nextInt(5)) {
        case 0 -> "order-" + at;                                // epoch milliseconds
        case 1 -> at + "000";                                   // epoch microseconds
        case 2 -> "pay_" + at + "000000";                       // epoch nanoseconds
        case 3 -> stamp.format(java.time.Instant.ofEpochMilli(at)); // yyyyMMddHHmmssSSS
        default -> "batch-" + stamp.format(java.time.Instant.ofEpochMilli(at)).substring(0, 14) + "-" + random.nextInt(100);
      };
    };
    List<String> refused = new ArrayList<>();
    List<String> asBody = new ArrayList<>();
    for (int i = 0; i < 200_000; i++) {
      String key = timeKeys.get();
      if (CardNumberScanner.containsIssuedCardNumber(key)) {
        refused.add(key);
      }
      if (asBody.size() < 1 && CardNumberScanner.containsCardNumber(key)) {
        asBody.add(key);
      }
    }
    assertThat(refused).isEmpty();
    assertThat(asBody).as("the body's scan would take some for cards").isNotEmpty();
    // Random 16-digit numbers starting as Visa's do are refused as often as in a body: one in ten.
    int visaLike = 0;
    for (int i = 0; i < 10_000; i++) {
      visaLike += CardNumberScanner.containsIssuedCardNumber("4" + randomDigits(15, random)) ? 1 : 0;
    }
    assertThat(visaLike).isBetween(800, 1200);
    assertThat(CardNumberScanner.containsIssuedCardNumber(luhnValid("1", 16, random))).isFalse();
    assertThat(CardNumberScanner.containsIssuedCardNumber(luhnValid("2026", 16, random))).isFalse();
  }

  private static String randomDigits(int count, java.util.Random random) {
    StringBuilder digits = new StringBuilder(count);
    for (int d = 0; d < count; d++) {
      digits.append(random.nextInt(10));
    }
    return digits.toString();
  }

  /** A random Luhn-valid number of {@code length} digits starting with {@code prefix}. */
  private static String luhnValid(String prefix, int length, java.util.Random random) {
    StringBuilder number = new StringBuilder(prefix);
    while (number.length() < length - 1) {
      number.append(random.nextInt(10));
    }
    // Luhn: double every second digit from the right, counting the check digit as the first.
    int sum = 0;
    for (int k = 0; k < number.length(); k++) {
      int digit = number.charAt(number.length() - 1 - k) - '0';
      sum += k % 2 == 0 ? (digit * 2 > 9 ? digit * 2 - 9 : digit * 2) : digit;
    }
    return number.append((10 - sum % 10) % 10).toString();
  }

  /** The texts, of {@code count} made by {@code next}, that the scan takes for card data. */
  private static List<String> refusedAmong(int count, java.util.function.Supplier<String> next) {
    List<String> refused = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      String text = next.get();
      if (CardNumberScanner.containsCardNumber(text)) {
        refused.add(text);
      }
    }
    return refused;
  }

  @Test
  @DisplayName("Amex and Diners groupings are recognised")
  void otherCardGroupings() {
    assertThat(CardNumberScanner.containsCardNumber("3782 822463 10005")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("3056 930902 5904")).isTrue();
  }

  @Test
  @DisplayName("card numbers typed or pasted with uneven spaces, no-break spaces, tabs, dots or slashes are found")
  void otherSeparators() {
    assertThat(CardNumberScanner.containsCardNumber("4242 4242  4242 4242")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4242\u00a04242\u00a04242\u00a04242")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4242\u202f4242 4242\u20094242")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4242\t4242\t4242\t4242")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("pan 4242.4242.4242.4242")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4242/4242/4242/4242")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("3782.822463.10005")).isTrue();
    // Mixed kinds, four or more spaces, dates and versions are not a card's printing.
    assertThat(CardNumberScanner.containsCardNumber("4242.4242-4242 4242")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("4242    4242    4242    4242")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("invoice 2024.01.15 v1.2.3")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("shipped 12/30/2025 box 4/4")).isFalse();
  }

  @Test
  @DisplayName("card numbers in other scripts' digits, with typographic dashes, other spaces or zero-width characters are found")
  void unicodePrintings() {
    assertThat(CardNumberScanner.containsCardNumber("4111\u20131111\u20131111\u20131111")).as("en dash").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("3782\u2013822463\u201310005")).as("en dash, Amex").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4111\u22121111\u22121111\u22121111")).as("minus sign").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4111\u30001111\u30001111\u30001111")).as("ideographic space").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4111\u200b1111\u200b1111\u200b1111")).as("zero-width space").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4111\u00ad1111\u00ad1111\u00ad1111")).as("soft hyphen").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("\u200e4111111111111111\u200f")).as("direction marks").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4111\u200b 1111 1111 1111")).as("invisible beside a separator").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4111\u00ad-1111-1111-1111")).as("soft hyphen beside a dash").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4111\u200e\u200f1111\u200b\u200b11111111")).as("two invisibles in a row").isTrue();
    String mathematicalBold = "4111111111111111".codePoints().map(d -> 0x1d7ce + d - '0')
        .collect(StringBuilder::new, StringBuilder::appendCodePoint, StringBuilder::append).toString();
    assertThat(CardNumberScanner.containsCardNumber(mathematicalBold)).as("mathematical digits, outside the BMP").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4\u200b1\u200b1\u200b1\u200b1111\u200d11111111")).as("zero-width between every digit").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11"))
        .as("full-width digits").isTrue();
    assertThat(CardNumberScanner.containsCardNumber("\u0664\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661"))
        .as("Arabic-Indic digits").isTrue();
    // Luhn still decides; dashes of different kinds are one kind (autocorrect turns some of a typed
    // number's hyphens into en dashes), but a dash and a dot are still two.
    assertThat(CardNumberScanner.containsCardNumber("4111\u20131111\u20131111\u20131112")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("4111\u20131111-1111\u20141111")).isTrue();
    assertThat(CardNumberScanner.containsCardNumber("4111\u20131111.1111\u20131111")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("pages 12\u201314, 2019\u20132024")).isFalse();
  }

  @Test
  @DisplayName("the scan reaches nested values and JSON numbers, and reports the path, not the value")
  void nested() {
    JsonObject body = new JsonObject().put("metadata", new JsonObject().put("pan", 4111111111111111L));
    assertThat(CardNumberScanner.findCardNumber(body)).contains("$.metadata.pan");
    assertThat(CardNumberScanner.findCardNumber(new JsonObject().put("source", "tok_visa"))).isEmpty();
    JsonObject inArray = new JsonObject().put("items", new JsonArray()
        .add(new JsonObject().put("note", "gift")).add(new JsonObject().put("note", "4111 1111 1111 1111")));
    assertThat(CardNumberScanner.findCardNumber(inArray)).contains("$.items[1].note");
    JsonObject inName = new JsonObject().put("metadata", new JsonObject().put("4111111111111111", "x"));
    assertThat(CardNumberScanner.findCardNumber(inName)).contains("$.metadata.<redacted>");
  }

  @Test
  @DisplayName("a body of one long member name holding a long array is scanned without a path per element; a card at its end is still found")
  void longNameOverLongArray() {
    String name = "a".repeat(32_000);
    JsonArray zeros = new JsonArray();
    for (int i = 0; i < 16_000; i++) {
      zeros.add(0);
    }
    assertThat(CardNumberScanner.findCardNumber(new JsonObject().put(name, zeros))).isEmpty();
    zeros.add("4111 1111 1111 1111");
    assertThat(CardNumberScanner.findCardNumber(new JsonObject().put(name, zeros))).contains("$." + name + "[16000]");
  }
}
