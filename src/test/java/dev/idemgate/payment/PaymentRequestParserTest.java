package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.auth.MerchantKeys;
import dev.idemgate.config.ConfigLoader;
import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Optional;
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
  @DisplayName("a body that is not strict JSON in UTF-8 is refused: a member named twice, a comment, invalid or overlong UTF-8, UTF-16")
  void strictJson() {
    String ok = "{\"amount\":1,\"currency\":\"EUR\",\"source\":\"tok_visa\"";
    assertThat(parse(ok + "}")).isInstanceOf(ParsedPayment.Valid.class);
    assertThat(fields(parse("{\"amount\":1,\"amount\":2,\"currency\":\"EUR\",\"source\":\"tok_visa\"}"))).containsExactly("$");
    assertThat(fields(parse(ok + ",\"description\":\"4242424242424242\",\"description\":\"ok\"}"))).containsExactly("$");
    assertThat(fields(parse(ok + " /* 4242424242424242 */}"))).containsExactly("$");
    assertThat(fields(parse(ok + "} // 4242424242424242"))).containsExactly("$");
    byte[] overlong = (ok + ",\"description\":\"a\u0000b\"}").getBytes(StandardCharsets.UTF_8);
    for (int i = 0; i < overlong.length; i++) {
      if (overlong[i] == 0) { // NUL, written as the overlong pair C0 80 below
        byte[] bytes = new byte[overlong.length + 1];
        System.arraycopy(overlong, 0, bytes, 0, i);
        bytes[i] = (byte) 0xc0;
        bytes[i + 1] = (byte) 0x80;
        System.arraycopy(overlong, i + 1, bytes, i + 2, overlong.length - i - 1);
        assertThat(PaymentRequestParser.parse(Buffer.buffer(bytes))).isInstanceOf(ParsedPayment.Invalid.class);
      }
    }
    assertThat(PaymentRequestParser.parse(Buffer.buffer((ok + "}").getBytes(StandardCharsets.UTF_16LE))))
        .isInstanceOf(ParsedPayment.Invalid.class);
    assertThat(PaymentRequestParser.parse(Buffer.buffer(("\uFEFF" + ok + "}").getBytes(StandardCharsets.UTF_8))))
        .as("a UTF-8 byte-order mark, as .NET writes it").isInstanceOf(ParsedPayment.Valid.class);
    assertThat(PaymentRequestParser.parse(Buffer.buffer(new byte[] {'{', '"', 'a', (byte) 0xed, (byte) 0xa0, (byte) 0x80, '"', ':', '1', '}'})))
        .as("a surrogate encoded in three bytes").isInstanceOf(ParsedPayment.Invalid.class);
  }

  @Test
  @DisplayName("an unpaired surrogate escape in any string or member name is refused (stored, it became '?'); a pair is an emoji")
  void loneSurrogates() {
    String ok = "{\"amount\":1,\"currency\":\"EUR\",\"source\":\"tok_visa\"";
    assertThat(fields(parse(ok + ",\"merchant_reference\":\"a\\ud800b\"}"))).containsExactly("$");
    assertThat(fields(parse(ok + ",\"description\":\"x\\udfff\"}"))).containsExactly("$");
    assertThat(fields(parse(ok + ",\"metadata\":{\"k\\ud800\":\"v\"}}"))).containsExactly("$");
    assertThat(parse(ok + ",\"description\":\"\\ud83d\\ude00\"}")).isInstanceOf(ParsedPayment.Valid.class);
  }

  @Test
  @DisplayName("text limits count characters as people do: 255 emoji are a valid reference, 256 are not")
  void limitsCountCharacters() {
    String ok = "{\"amount\":1,\"currency\":\"EUR\",\"source\":\"tok_visa\"";
    assertThat(parse(ok + ",\"merchant_reference\":\"" + "\uD83D\uDE00".repeat(255) + "\"}")).isInstanceOf(ParsedPayment.Valid.class);
    assertThat(fields(parse(ok + ",\"merchant_reference\":\"" + "\uD83D\uDE00".repeat(256) + "\"}"))).containsExactly("merchant_reference");
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

  @Test
  @DisplayName("a merchant_reference naming one of the gateway's payment ids is taken, though the id's digits hold a "
      + "Luhn-valid run; a card number beside it is still refused")
  void paymentIdInAReference() {
    // A client linking a retry or a refund to the payment it answered: one id in 800 was refused 400.
    String body = "{\"amount\":1999,\"currency\":\"EUR\",\"source\":\"tok_visa\",\"merchant_reference\":";
    assertThat(parse(body + "\"refund of pay_25f99578e2f44da28706087292934bfe\"}")).isInstanceOf(ParsedPayment.Valid.class);
    assertThat(parse(body + "\"pay_25f99578e2f44da28706087292934bfe 4111 1111 1111 1111\"}"))
        .isEqualTo(new ParsedPayment.CardData("$.merchant_reference"));
  }

  private static java.util.List<String> fields(ParsedPayment parsed) {
    assertThat(parsed).isInstanceOf(ParsedPayment.Invalid.class);
    return ((ParsedPayment.Invalid) parsed).errors().stream().map(ParsedPayment.FieldError::field).toList();
  }

  @Test
  @DisplayName("an API key (the presented one, any in force) or the admin token anywhere in the body is refused as "
      + "card data is, naming the field and never the value; card data is named first, and a clean body passes")
  void credentialsAreRefused() {
    CredentialScanner credentials = new CredentialScanner(MerchantKeys.load(ConfigLoader.load(Optional.empty(),
        Map.of("IDEMGATE_API_KEYS", "shop=sk_test_shop_key,other=sk_test_other_key"))), Optional.of("admin-token-stored-nowhere"));
    String ok = "{\"amount\":1,\"currency\":\"EUR\",\"source\":\"tok_visa\"";
    assertThat(PaymentRequestParser.parse(Buffer.buffer(ok + ",\"description\":\"key sk_test_other_key\"}"), credentials,
        "sk_test_shop_key")).isEqualTo(new ParsedPayment.CredentialData("$.description", CredentialScanner.Credential.API_KEY));
    assertThat(PaymentRequestParser.parse(Buffer.buffer(ok + ",\"metadata\":{\"k\":\"x-sk_test_shop_key\"}}"), credentials,
        "sk_test_shop_key")).isEqualTo(new ParsedPayment.CredentialData("$.metadata.k", CredentialScanner.Credential.API_KEY));
    assertThat(PaymentRequestParser.parse(Buffer.buffer(ok + ",\"merchant_reference\":\"admin-token-stored-nowhere\"}"),
        credentials, null)).isEqualTo(new ParsedPayment.CredentialData("$.merchant_reference",
            CredentialScanner.Credential.ADMIN_TOKEN));
    assertThat(PaymentRequestParser.parse(Buffer.buffer("{\"amount\":1,\"currency\":\"EUR\",\"source\":\"sk_test_other_key\"}"),
        credentials, null)).isEqualTo(new ParsedPayment.CredentialData("$.source", CredentialScanner.Credential.API_KEY));
    assertThat(PaymentRequestParser.parse(Buffer.buffer(ok + ",\"description\":\"4242424242424242 sk_test_other_key\"}"),
        credentials, null)).isEqualTo(new ParsedPayment.CardData("$.description"));
    assertThat(PaymentRequestParser.parse(Buffer.buffer(ok + ",\"description\":\"order 12, sk_test_other\"}"), credentials,
        "sk_test_shop_key")).isInstanceOf(ParsedPayment.Valid.class);
  }
}
