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

  private static Buffer charge(String id, String status, String declineCode) {
    return new JsonObject().put("id", id).put("status", status).put("decline_code", declineCode).toBuffer();
  }

  @Test
  @DisplayName("2xx succeeded is SUCCEEDED with the acquirer's charge id, and is no trouble")
  void succeeded() {
    HttpProvider.Answer answer = HttpProvider.mapCharge(200, charge("ch_1", "succeeded", null));
    assertThat(answer.outcome()).isEqualTo(new ProviderOutcome.Succeeded("ch_1"));
    assertThat(answer.trouble()).isFalse();
  }

  @Test
  @DisplayName("2xx declined is DECLINED with the decline code")
  void declined() {
    assertThat(HttpProvider.mapCharge(201, charge("ch_2", "declined", "insufficient_funds")).outcome())
        .isEqualTo(new ProviderOutcome.Declined("ch_2", "insufficient_funds"));
  }

  @Test
  @DisplayName("a 2xx without a readable charge status is UNKNOWN: the acquirer accepted something")
  void unreadableSuccess() {
    assertThat(HttpProvider.mapCharge(200, Buffer.buffer("not json")).outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(HttpProvider.mapCharge(200, charge("ch_3", "processing", null)).outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(HttpProvider.mapCharge(200, charge(null, "succeeded", null)).outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(ints = {503, 429})
  @DisplayName("503 and 429 are NOT_ATTEMPTED and count as provider trouble")
  void refusedBeforeAcceptance(int status) {
    HttpProvider.Answer answer = HttpProvider.mapCharge(status, Buffer.buffer("{}"));
    assertThat(answer.outcome()).isInstanceOf(ProviderOutcome.NotAttempted.class);
    assertThat(answer.trouble()).isTrue();
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(ints = {400, 401, 403, 404, 413, 422})
  @DisplayName("a refused request (4xx) is NOT_ATTEMPTED and does not open the circuit")
  void rejectedRequest(int status) {
    HttpProvider.Answer answer = HttpProvider.mapCharge(status, Buffer.buffer("{\"error\":\"invalid_charge\"}"));
    assertThat(answer.outcome()).isInstanceOf(ProviderOutcome.NotAttempted.class);
    assertThat(answer.trouble()).isFalse();
  }

  @Test
  @DisplayName("409 is UNKNOWN: a twin under the same provider key is still in flight at the acquirer")
  void conflictIsUnknown() {
    assertThat(HttpProvider.mapCharge(409, Buffer.buffer("{}")).outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(ints = {500, 502, 504})
  @DisplayName("other 5xx are UNKNOWN: an error after acceptance may hide a charge")
  void serverErrorsAreUnknown(int status) {
    HttpProvider.Answer answer = HttpProvider.mapCharge(status, Buffer.buffer(""));
    assertThat(answer.outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(answer.trouble()).isTrue();
  }

  @Test
  @DisplayName("an inquiry with no charge is NOT_ATTEMPTED; with charges the last one decides")
  void inquiry() {
    JsonObject none = new JsonObject().put("idempotency_key", "k").put("requests", 0).put("charges", new JsonArray());
    assertThat(HttpProvider.mapInquiry(200, none.toBuffer()).outcome()).isInstanceOf(ProviderOutcome.NotAttempted.class);
    JsonObject two = new JsonObject().put("idempotency_key", "k").put("requests", 2).put("charges", new JsonArray()
        .add(new JsonObject().put("id", "ch_1").put("status", "declined").put("decline_code", "card_declined"))
        .add(new JsonObject().put("id", "ch_2").put("status", "succeeded")));
    assertThat(HttpProvider.mapInquiry(200, two.toBuffer()).outcome()).isEqualTo(new ProviderOutcome.Succeeded("ch_2"));
  }

  @Test
  @DisplayName("an inquiry of a request the acquirer has but has not charged yet is UNKNOWN, not NOT_ATTEMPTED")
  void inquiryInProgress() {
    JsonObject inProgress = new JsonObject().put("idempotency_key", "k").put("requests", 1).put("charges", new JsonArray());
    assertThat(HttpProvider.mapInquiry(200, inProgress.toBuffer()).outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
    JsonObject noCount = new JsonObject().put("idempotency_key", "k").put("charges", new JsonArray());
    assertThat(HttpProvider.mapInquiry(200, noCount.toBuffer()).outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(ints = {400, 404, 500, 503})
  @DisplayName("an inquiry that is not a readable 200 is UNKNOWN, never NOT_ATTEMPTED")
  void failedInquiryIsUnknown(int status) {
    assertThat(HttpProvider.mapInquiry(status, Buffer.buffer("{\"charges\":[]}")).outcome())
        .isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(HttpProvider.mapInquiry(200, Buffer.buffer("{}")).outcome()).isInstanceOf(ProviderOutcome.Unknown.class);
  }
}
