package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.payment.PaymentRequest;
import io.vertx.core.json.JsonObject;
import java.util.List;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class PaymentTwinsTest {
  private static final List<String> DEFAULT_FIELDS = List.of("amount", "currency", "source", "merchant_reference");

  private static PaymentRequest request(long amount, String source, String reference, String description) {
    return new PaymentRequest(amount, "EUR", source, reference, description, new JsonObject().put("k", "v"));
  }

  @Test
  @DisplayName("the same payment has the same fingerprint whatever its description or metadata")
  void samePaymentSameFingerprint() {
    assertThat(PaymentTwins.fingerprint(DEFAULT_FIELDS, request(1999, "tok_visa", "order-1", "first try")))
        .isEqualTo(PaymentTwins.fingerprint(DEFAULT_FIELDS, request(1999, "tok_visa", "order-1", "second try")))
        .hasSize(32);
  }

  @Test
  @DisplayName("same amount for another customer's token, another amount or another reference is another payment")
  void similarPaymentsDiffer() {
    String base = PaymentTwins.fingerprint(DEFAULT_FIELDS, request(1999, "tok_visa", "order-1", null));
    assertThat(PaymentTwins.fingerprint(DEFAULT_FIELDS, request(1999, "tok_mastercard", "order-1", null))).isNotEqualTo(base);
    assertThat(PaymentTwins.fingerprint(DEFAULT_FIELDS, request(2000, "tok_visa", "order-1", null))).isNotEqualTo(base);
    assertThat(PaymentTwins.fingerprint(DEFAULT_FIELDS, request(1999, "tok_visa", "order-2", null))).isNotEqualTo(base);
    assertThat(PaymentTwins.fingerprint(DEFAULT_FIELDS, request(1999, "tok_visa", null, null))).isNotEqualTo(base);
  }

  @Test
  @DisplayName("the configured field list decides what counts: adding description separates the payments")
  void configuredFields() {
    List<String> withDescription = List.of("amount", "currency", "source", "merchant_reference", "description");
    assertThat(PaymentTwins.fingerprint(withDescription, request(1999, "tok_visa", "order-1", "a")))
        .isNotEqualTo(PaymentTwins.fingerprint(withDescription, request(1999, "tok_visa", "order-1", "b")));
    assertThat(PaymentTwins.fingerprint(List.of("amount", "currency"), request(1999, "tok_visa", "order-1", "a")))
        .isEqualTo(PaymentTwins.fingerprint(List.of("currency", "amount"), request(1999, "tok_other", "order-9", "b")));
  }

  @Test
  @DisplayName("a key is named by its provider key, which finds the payment but does not contain the key")
  void keyHash() {
    String hash = PaymentTwins.keyHash("merchant_a", new IdempotencyKey("order-1-attempt"));
    assertThat(hash).hasSize(64).doesNotContain("order").isEqualTo(ProviderKeys.of("merchant_a", "order-1-attempt"));
    assertThat(PaymentTwins.keyHash("merchant_b", new IdempotencyKey("order-1-attempt"))).isNotEqualTo(hash);
  }
}
