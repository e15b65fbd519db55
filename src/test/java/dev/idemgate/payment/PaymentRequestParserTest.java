package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.buffer.Buffer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class PaymentRequestParserTest {
  private static ParsedPayment parse(String json) {
    return PaymentRequestParser.parse(Buffer.buffer(json));
  }

  @Test
  @DisplayName("a complete body is a valid payment request")
  void valid() {
    ParsedPayment parsed = parse("{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\","
        + "\"merchant_reference\":\"order-1\",\"description\":\"shoes\",\"metadata\":{\"k\":\"v\"}}");
    assertThat(parsed).isInstanceOf(ParsedPayment.Valid.class);
    PaymentRequest r = ((ParsedPayment.Valid) parsed).request();
    assertThat(r.amount()).isEqualTo(1999);
    assertThat(r.currency()).isEqualTo("EUR");
    assertThat(r.merchantReference()).isEqualTo("order-1");
  }

  @Test
  @DisplayName("amount must be an integer from 1 to 10^12")
  void amountBounds() {
    assertThat(parse("{\"amount\":1000000000000,\"currency\":\"EUR\",\"source\":\"tok_visa\"}")).isInstanceOf(ParsedPayment.Valid.class);
    assertThat(fields(parse("{\"amount\":1000000000001,\"currency\":\"EUR\",\"source\":\"tok_visa\"}"))).containsExactly("amount");
    assertThat(fields(parse("{\"amount\":19.99,\"currency\":\"EUR\",\"source\":\"tok_visa\"}"))).containsExactly("amount");
    assertThat(fields(parse("{\"amount\":-5,\"currency\":\"EUR\",\"source\":\"tok_visa\"}"))).containsExactly("amount");
  }

  @Test
  @DisplayName("currency must be an ISO 4217 code and unknown top-level fields are rejected")
  void currencyAndUnknownFields() {
    assertThat(fields(parse("{\"amount\":1,\"currency\":\"XYZ\",\"source\":\"tok_visa\",\"card\":\"x\"}")))
        .containsExactlyInAnyOrder("currency", "card");
  }

  @Test
  @DisplayName("codes no acquirer charges (metals, testing, 'no currency', withdrawn currencies) are refused; those in use pass")
  void currenciesNotInUse() {
    for (String code : new String[] {"XAU", "XTS", "XXX", "XDR", "DEM", "FRF", "HRK", "TRL", "ZMK", "CUC", "VEF"}) {
      assertThat(fields(parse("{\"amount\":1,\"currency\":\"" + code + "\",\"source\":\"tok_visa\"}"))).as(code)
          .containsExactly("currency");
    }
    for (String code : new String[] {"EUR", "USD", "JPY", "XOF", "XAF", "XPF", "XCD", "ZMW", "VES", "TRY", "BYN", "ANG"}) {
      assertThat(parse("{\"amount\":1,\"currency\":\"" + code + "\",\"source\":\"tok_visa\"}")).as(code)
          .isInstanceOf(ParsedPayment.Valid.class);
    }
  }

  @Test
  @DisplayName("metadata: no control character in a key and no U+0000 in a value (PostgreSQL cannot store it)")
  void metadataCharacters() {
    String base = "{\"amount\":1,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"metadata\":";
    assertThat(fields(parse(base + "{\"k\":\"a\\u0000b\"}}"))).containsExactly("metadata.k");
    assertThat(fields(parse(base + "{\"k\\u0000\":\"v\"}}"))).containsExactly("metadata");
    assertThat(fields(parse(base + "{\"k\\n\":\"v\"}}"))).containsExactly("metadata");
    assertThat(parse(base + "{\"address\":\"1 Main St\\nSpringfield\"}}")).isInstanceOf(ParsedPayment.Valid.class);
  }

  @Test
  @DisplayName("a body that is not a JSON object is invalid")
  void notAnObject() {
    assertThat(fields(parse("[1,2]"))).containsExactly("$");
    assertThat(fields(parse(""))).containsExactly("$");
  }

  @Test
  @DisplayName("card data is reported before any other problem")
  void cardDataFirst() {
    assertThat(parse("{\"amount\":\"x\",\"source\":\"4111111111111111\"}")).isEqualTo(new ParsedPayment.CardData("$.source"));
  }

  private static java.util.List<String> fields(ParsedPayment parsed) {
    assertThat(parsed).isInstanceOf(ParsedPayment.Invalid.class);
    return ((ParsedPayment.Invalid) parsed).errors().stream().map(ParsedPayment.FieldError::field).toList();
  }
}
