package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

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
  @DisplayName("a printed IBAN is not a card, though one in ten reads as a Luhn-valid 4-4-4-4-2 grouping; a card beside it still is")
  void ibansAreNotCards() {
    assertThat(CardNumberScanner.containsCardNumber("IBAN DE88 5886 8227 2847 1515 72")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("DE88588682272847151572")).isFalse();
    assertThat(CardNumberScanner.containsCardNumber("IBAN DE88 5886 8227 2847 1515 72, card 4111 1111 1111 1111")).isTrue();
    java.util.Random random = new java.util.Random(7);
    assertThat(refusedAmong(200_000, () -> {
      StringBuilder iban = new StringBuilder("IBAN DE").append(random.nextInt(10)).append(random.nextInt(10));
      for (int group = 0; group < 4; group++) {
        iban.append(' ').append(String.format("%04d", random.nextInt(10_000)));
      }
      return iban.append(' ').append(String.format("%02d", random.nextInt(100))).toString();
    })).isEmpty();
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
  @DisplayName("the scan reaches nested values and JSON numbers, and reports the path, not the value")
  void nested() {
    JsonObject body = new JsonObject().put("metadata", new JsonObject().put("pan", 4111111111111111L));
    assertThat(CardNumberScanner.findCardNumber(body)).contains("$.metadata.pan");
    assertThat(CardNumberScanner.findCardNumber(new JsonObject().put("source", "tok_visa"))).isEmpty();
  }
}
