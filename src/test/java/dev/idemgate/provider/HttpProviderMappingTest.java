package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@DisplayName("HttpProvider maps acquirer answers")
class HttpProviderMappingTest {
  private static final ChargeInquiry K = new ChargeInquiry("k", 1999, "EUR");

  private static Buffer charge(String id, String status, String declineCode) {
    return new JsonObject().put("id", id).put("status", status).put("decline_code", declineCode).toBuffer();
  }

  @Test
  @DisplayName("2xx succeeded is SUCCEEDED with the acquirer's charge id, and is no trouble")
  void succeeded() {
    HttpProvider.Answer answer = HttpProvider.mapCharge(200, charge("ch_1", "succeeded", null), 1999, "EUR");
    assertThat(answer.outcome()).isEqualTo(new ProviderOutcome.Succeeded("ch_1"));
    assertThat(answer.trouble()).isFalse();
  }

  @Test
  @DisplayName("2xx declined is DECLINED with the decline code")
  void declined() {
    assertThat(HttpProvider.mapCharge(201, charge("ch_2", "declined", "insufficient_funds"), 1999, "EUR").outcome())
        .isEqualTo(new ProviderOutcome.Declined("ch_2", "insufficient_funds"));
  }

  @Test
  @DisplayName("a 2xx without a readable charge status is UNKNOWN: the acquirer accepted something")
  void unreadableSuccess() {
    assertThat(HttpProvider.mapCharge(200, Buffer.buffer("not json"), 1999, "EUR").outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(HttpProvider.mapCharge(200, charge("ch_3", "processing", null), 1999, "EUR").outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(HttpProvider.mapCharge(200, charge(null, "succeeded", null), 1999, "EUR").outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(ints = {503, 429})
  @DisplayName("503 with the acquirer's error body, and 429, are NOT_ATTEMPTED and count as provider trouble")
  void refusedBeforeAcceptance(int status) {
    HttpProvider.Answer answer = HttpProvider.mapCharge(status, Buffer.buffer("{\"error\":\"acquirer_unavailable\"}"), 1999, "EUR");
    assertThat(answer.outcome()).isInstanceOf(ProviderOutcome.NotAttempted.class);
    assertThat(answer.trouble()).isTrue();
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(ints = {400, 401, 403, 404, 413, 422})
  @DisplayName("a refused request (4xx) is NOT_ATTEMPTED and does not open the circuit")
  void rejectedRequest(int status) {
    HttpProvider.Answer answer = HttpProvider.mapCharge(status, Buffer.buffer("{\"error\":\"invalid_charge\"}"), 1999, "EUR");
    assertThat(answer.outcome()).isInstanceOf(ProviderOutcome.NotAttempted.class);
    assertThat(answer.trouble()).isFalse();
  }

  @Test
  @DisplayName("402 with the acquirer's decline is DECLINED (a client told 502 'retry is safe' would retry a declined card "
      + "for ever); a 402 without one charged nothing either: NOT_ATTEMPTED")
  void paymentRequiredWithADecline() {
    assertThat(HttpProvider.mapCharge(402, charge("ch_4", "declined", "card_declined"), 1999, "EUR").outcome())
        .isEqualTo(new ProviderOutcome.Declined("ch_4", "card_declined"));
    HttpProvider.Answer bare = HttpProvider.mapCharge(402, Buffer.buffer("{\"error\":\"card_declined\"}"), 1999, "EUR");
    assertThat(bare.outcome()).isInstanceOf(ProviderOutcome.NotAttempted.class);
    assertThat(bare.trouble()).isFalse();
  }

  @Test
  @DisplayName("a 402 whose body names a charge that is not declined (succeeded or processing, of any amount) is UNKNOWN: "
      + "released as 'nothing charged', a retry could charge the card twice")
  void paymentRequiredWithAChargeThatIsNotDeclined() {
    for (Buffer body : new Buffer[] {charge("ch_5", "succeeded", null), charge("ch_6", "processing", null),
        charge("ch_7", "succeeded", null).toJsonObject().put("amount", 999).put("currency", "EUR").toBuffer()}) {
      HttpProvider.Answer answer = HttpProvider.mapCharge(402, body, 1999, "EUR");
      assertThat(answer.outcome()).as(body.toString())
          .isEqualTo(new ProviderOutcome.Unknown("acquirer answered 402 with a charge that is not declined",
              ProviderOutcome.Heard.HAS_IT));
      assertThat(answer.trouble()).isFalse();
    }
    assertThat(HttpProvider.mapCharge(402, Buffer.buffer("payment required"), 1999, "EUR").outcome())
        .isInstanceOf(ProviderOutcome.NotAttempted.class);
    assertThat(HttpProvider.mapCharge(402, charge(null, "declined", "card_declined"), 1999, "EUR").outcome())
        .as("declined without a charge id: refused, nothing charged")
        .isInstanceOf(ProviderOutcome.NotAttempted.class);
    assertThat(HttpProvider.mapCharge(402, charge("ch_8", "declined", "card_declined").toJsonObject().put("amount", 999)
        .put("currency", "EUR").toBuffer(), 1999, "EUR").outcome())
        .as("a decline of another amount: refused, nothing charged")
        .isInstanceOf(ProviderOutcome.NotAttempted.class);
  }

  @Test
  @DisplayName("409 is UNKNOWN: a twin under the same provider key is still in flight at the acquirer")
  void conflictIsUnknown() {
    assertThat(HttpProvider.mapCharge(409, Buffer.buffer("{}"), 1999, "EUR").outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(ints = {500, 502, 504})
  @DisplayName("other 5xx are UNKNOWN: an error after acceptance may hide a charge")
  void serverErrorsAreUnknown(int status) {
    HttpProvider.Answer answer = HttpProvider.mapCharge(status, Buffer.buffer(""), 1999, "EUR");
    assertThat(answer.outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(answer.trouble()).isTrue();
  }

  @Test
  @DisplayName("an inquiry with no charge is NOT_ATTEMPTED; with charges a succeeded one decides")
  void inquiry() {
    JsonObject none = new JsonObject().put("idempotency_key", "k").put("requests", 0).put("charges", new JsonArray());
    assertThat(HttpProvider.mapInquiry(200, none.toBuffer(), K).outcome()).isInstanceOf(ProviderOutcome.NotAttempted.class);
    JsonObject two = new JsonObject().put("idempotency_key", "k").put("requests", 2).put("charges", new JsonArray()
        .add(new JsonObject().put("id", "ch_1").put("status", "declined").put("decline_code", "card_declined"))
        .add(new JsonObject().put("id", "ch_2").put("status", "succeeded")));
    assertThat(HttpProvider.mapInquiry(200, two.toBuffer(), K).outcome()).isEqualTo(new ProviderOutcome.Succeeded("ch_2"));
  }

  @Test
  @DisplayName("an inquiry of a request the acquirer has but has not charged yet is UNKNOWN, not NOT_ATTEMPTED")
  void inquiryInProgress() {
    JsonObject inProgress = new JsonObject().put("idempotency_key", "k").put("requests", 1).put("charges", new JsonArray());
    assertThat(heard(HttpProvider.mapInquiry(200, inProgress.toBuffer(), K))).isEqualTo(ProviderOutcome.Heard.HAS_IT);
    JsonObject noCount = new JsonObject().put("idempotency_key", "k").put("charges", new JsonArray());
    assertThat(heard(HttpProvider.mapInquiry(200, noCount.toBuffer(), K)))
        .as("requests null: the acquirer forgot, or does not count").isEqualTo(ProviderOutcome.Heard.CANNOT_TELL);
    JsonObject processing = new JsonObject().put("idempotency_key", "k").put("requests", 1).put("charges", new JsonArray()
        .add(new JsonObject().put("id", "ch_1").put("status", "processing")));
    assertThat(heard(HttpProvider.mapInquiry(200, processing.toBuffer(), K))).isEqualTo(ProviderOutcome.Heard.HAS_IT);
    JsonObject unstorable = new JsonObject().put("idempotency_key", "k").put("requests", 1).put("charges", new JsonArray()
        .add(new JsonObject().put("id", "ch_\ud800").put("status", "succeeded")));
    assertThat(heard(HttpProvider.mapInquiry(200, unstorable.toBuffer(), K)))
        .as("charged, under an id the ledger cannot hold").isEqualTo(ProviderOutcome.Heard.HAS_IT);
  }

  /** What an UNKNOWN inquiry heard from the acquirer, which decides what an operator's verdict may do. */
  private static ProviderOutcome.Heard heard(HttpProvider.Answer answer) {
    assertThat(answer.outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    return ((ProviderOutcome.Unknown) answer.outcome()).heard();
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(ints = {400, 404, 500, 503})
  @DisplayName("an inquiry that is not a readable 200 is UNKNOWN, never NOT_ATTEMPTED")
  void failedInquiryIsUnknown(int status) {
    assertThat(heard(HttpProvider.mapInquiry(status, Buffer.buffer("{\"idempotency_key\":\"k\",\"charges\":[]}"), K)))
        .isEqualTo(ProviderOutcome.Heard.NO_ANSWER);
    assertThat(heard(HttpProvider.mapInquiry(200, Buffer.buffer("{}"), K))).isEqualTo(ProviderOutcome.Heard.NO_ANSWER);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(ints = {429, 503})
  @DisplayName("an inquiry refused with 429 or 503 is UNKNOWN and trouble, carrying the acquirer's Retry-After for recovery")
  void refusedInquiryCarriesRetryAfter(int status) {
    HttpProvider.Answer answer = HttpProvider.mapInquiry(status, Buffer.buffer("{}"), K, 120);
    assertThat(answer.outcome()).isEqualTo(new ProviderOutcome.Unknown("inquiry answered " + status,
        ProviderOutcome.Heard.NO_ANSWER, 120));
    assertThat(answer.trouble()).isTrue();
  }

  @ParameterizedTest(name = "body [{0}]")
  @ValueSource(strings = {"", "upstream connect error or disconnect/reset before headers", "<html>503</html>", "{}",
      // Spring Boot's error page (a Spring Cloud Gateway in front of the acquirer, say): "error" is a reason phrase
      "{\"timestamp\":\"2026-11-30T15:00:00.000+00:00\",\"path\":\"/charges\",\"status\":503,"
          + "\"error\":\"Service Unavailable\",\"requestId\":\"4f1c2a9e-1\"}",
      "{\"error\":\"\"}", "{\"error\":{\"code\":503,\"message\":\"The service is currently unavailable.\"}}"})
  @DisplayName("a 503 without the acquirer's error body (a proxy's, after the charge may have gone through) is UNKNOWN and trouble")
  void proxy503IsUnknown(String body) {
    HttpProvider.Answer answer = HttpProvider.mapCharge(503, Buffer.buffer(body), 1999, "EUR");
    assertThat(answer.outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(answer.trouble()).isTrue();
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(ints = {301, 302, 303, 307, 308})
  @DisplayName("a redirect is trouble; for a charge NOT_ATTEMPTED only when it says 'send it there instead' (307, 308), "
      + "else UNKNOWN (a 303 may answer a charge already made); for an inquiry UNKNOWN")
  void redirects(int status) {
    HttpProvider.Answer charge = HttpProvider.mapCharge(status, Buffer.buffer(""), 1999, "EUR");
    assertThat(charge.outcome()).isInstanceOf(status >= 307 ? ProviderOutcome.NotAttempted.class : ProviderOutcome.Unknown.class);
    assertThat(charge.trouble()).isTrue();
    HttpProvider.Answer inquiry = HttpProvider.mapInquiry(status, Buffer.buffer(""), K);
    assertThat(inquiry.outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(inquiry.trouble()).isTrue();
  }

  @Test
  @DisplayName("a charge id the ledger cannot hold (over 255 characters, a NUL, a newline, empty) is UNKNOWN, not stored")
  void unstorableChargeId() {
    for (String id : new String[] {"c".repeat(256), "ch_\u0000", "ch_1\nx", ""}) {
      assertThat(HttpProvider.mapCharge(200, charge(id, "succeeded", null), 1999, "EUR").outcome()).as(id.length() + " chars")
          .isInstanceOf(ProviderOutcome.Unknown.class);
      assertThat(HttpProvider.mapCharge(200, charge(id, "declined", "card_declined"), 1999, "EUR").outcome())
          .isInstanceOf(ProviderOutcome.Unknown.class);
    }
    assertThat(HttpProvider.mapCharge(200, charge("c".repeat(255), "succeeded", null), 1999, "EUR").outcome())
        .isEqualTo(new ProviderOutcome.Succeeded("c".repeat(255)));
  }

  @Test
  @DisplayName("a decline whose code cannot be stored is still DECLINED, with the code 'declined'")
  void unstorableDeclineCode() {
    assertThat(HttpProvider.mapCharge(200, charge("ch_9", "declined", "x".repeat(5_000)), 1999, "EUR").outcome())
        .isEqualTo(new ProviderOutcome.Declined("ch_9", "declined"));
    assertThat(HttpProvider.mapCharge(200, charge("ch_9", "declined", "bad\u0000code"), 1999, "EUR").outcome())
        .isEqualTo(new ProviderOutcome.Declined("ch_9", "declined"));
  }

  @Test
  @DisplayName("an inquiry answer about another key, or without the key, is UNKNOWN; a succeeded charge wins over a later decline")
  void inquiryKeyAndPrecedence() {
    JsonArray succeeded = new JsonArray().add(new JsonObject().put("id", "ch_1").put("status", "succeeded"));
    JsonObject other = new JsonObject().put("idempotency_key", "other").put("requests", 1).put("charges", succeeded);
    assertThat(HttpProvider.mapInquiry(200, other.toBuffer(), K).outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    JsonObject unnamed = new JsonObject().put("requests", 0).put("charges", new JsonArray());
    assertThat(HttpProvider.mapInquiry(200, unnamed.toBuffer(), K).outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    JsonObject everyCharge = new JsonObject().put("idempotency_key", "k").put("requests", 2).put("charges", new JsonArray()
        .add(new JsonObject().put("id", "ch_1").put("status", "succeeded").put("idempotency_key", "k"))
        .add(new JsonObject().put("id", "ch_2").put("status", "succeeded").put("idempotency_key", "someone-else")));
    assertThat(HttpProvider.mapInquiry(200, everyCharge.toBuffer(), K).outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    JsonObject thenDeclined = new JsonObject().put("idempotency_key", "k").put("requests", 2).put("charges", new JsonArray()
        .add(new JsonObject().put("id", "ch_1").put("status", "succeeded"))
        .add(new JsonObject().put("id", "ch_2").put("status", "declined").put("decline_code", "card_declined")));
    assertThat(HttpProvider.mapInquiry(200, thenDeclined.toBuffer(), K).outcome()).isEqualTo(new ProviderOutcome.Succeeded("ch_1"));
  }

  @Test
  @DisplayName("a charge of another amount or currency than asked is UNKNOWN (the acquirer has another charge), not the "
      + "payment's outcome; the same amount and currency, in any case, or none given, are")
  void otherAmountOrCurrency() {
    Buffer partial = charge("ch_1", "succeeded", null).toJsonObject().put("amount", 1000).put("currency", "EUR").toBuffer();
    assertThat(heard(HttpProvider.mapCharge(200, partial, 1999, "EUR"))).isEqualTo(ProviderOutcome.Heard.OTHER_CHARGE);
    Buffer dollars = charge("ch_1", "succeeded", null).toJsonObject().put("amount", 1999).put("currency", "USD").toBuffer();
    assertThat(heard(HttpProvider.mapCharge(200, dollars, 1999, "EUR"))).isEqualTo(ProviderOutcome.Heard.OTHER_CHARGE);
    Buffer fraction = charge("ch_1", "succeeded", null).toJsonObject().put("amount", 1999.5).toBuffer();
    assertThat(heard(HttpProvider.mapCharge(200, fraction, 1999, "EUR"))).isEqualTo(ProviderOutcome.Heard.OTHER_CHARGE);
    Buffer declinedOther = charge("ch_2", "declined", "card_declined").toJsonObject().put("amount", 1000).toBuffer();
    assertThat(heard(HttpProvider.mapCharge(200, declinedOther, 1999, "EUR"))).isEqualTo(ProviderOutcome.Heard.OTHER_CHARGE);
    // Not a final charge: still the acquirer's request, whatever its amount.
    Buffer processingOther = charge("ch_3", "processing", null).toJsonObject().put("amount", 1000).toBuffer();
    assertThat(heard(HttpProvider.mapCharge(200, processingOther, 1999, "EUR"))).isEqualTo(ProviderOutcome.Heard.HAS_IT);

    Buffer same = charge("ch_1", "succeeded", null).toJsonObject().put("amount", 1999).put("currency", "eur").toBuffer();
    assertThat(HttpProvider.mapCharge(200, same, 1999, "EUR").outcome()).isEqualTo(new ProviderOutcome.Succeeded("ch_1"));

    JsonObject inquiry = new JsonObject().put("idempotency_key", "k").put("requests", 1).put("charges", new JsonArray()
        .add(partial.toJsonObject()));
    assertThat(heard(HttpProvider.mapInquiry(200, inquiry.toBuffer(), K))).isEqualTo(ProviderOutcome.Heard.OTHER_CHARGE);
  }

  @Test
  @DisplayName("an inquiry listing a charge of another amount beside one still processing is heard as the processing one "
      + "(it may still charge the payment), in either order; beside a decline of the payment's own, as the other charge")
  void otherChargeSaysLeast() {
    JsonObject partial = charge("ch_1", "succeeded", null).toJsonObject().put("amount", 1000);
    JsonObject processing = new JsonObject().put("id", "ch_2").put("status", "processing");
    for (JsonArray charges : new JsonArray[] {new JsonArray().add(partial).add(processing),
        new JsonArray().add(processing).add(partial)}) {
      JsonObject inquiry = new JsonObject().put("idempotency_key", "k").put("requests", 2).put("charges", charges);
      assertThat(heard(HttpProvider.mapInquiry(200, inquiry.toBuffer(), K))).as(charges.encode())
          .isEqualTo(ProviderOutcome.Heard.HAS_IT);
    }
    JsonObject declined = charge("ch_3", "declined", "card_declined").toJsonObject();
    JsonObject inquiry = new JsonObject().put("idempotency_key", "k").put("requests", 2).put("charges",
        new JsonArray().add(partial).add(declined));
    assertThat(heard(HttpProvider.mapInquiry(200, inquiry.toBuffer(), K))).isEqualTo(ProviderOutcome.Heard.OTHER_CHARGE);
  }
}
