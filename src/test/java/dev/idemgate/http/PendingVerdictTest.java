package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.buffer.Buffer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class PendingVerdictTest {
  @Test
  @DisplayName("an operator's verdict is an outcome with the fields that outcome takes")
  void verdictsTaken() {
    assertThat(ManagementVerticle.verdict(Buffer.buffer("{\"outcome\":\"succeeded\",\"provider_reference\":\"ch_1\"}"))
        .getString("provider_reference")).isEqualTo("ch_1");
    assertThat(ManagementVerticle.verdict(Buffer.buffer("{\"outcome\":\"declined\"}")).getString("outcome")).isEqualTo("declined");
    assertThat(ManagementVerticle.verdict(Buffer.buffer(
        "{\"outcome\":\"declined\",\"provider_reference\":\"ch_2\",\"decline_code\":\"do_not_honor\"}")).getString("decline_code"))
        .isEqualTo("do_not_honor");
    assertThat(ManagementVerticle.verdict(Buffer.buffer("{\"outcome\":\"not_charged\"}")).fieldNames()).containsOnly("outcome");
    assertThat(ManagementVerticle.verdict(Buffer.buffer("{\"outcome\":\"succeeded\",\"provider_reference\":\"ch_\\ud83d\\ude00\"}"))
        .getString("provider_reference")).as("a pair is one character").isEqualTo("ch_\ud83d\ude00");
    assertThat(ManagementVerticle.verdict(Buffer.buffer("{\"outcome\":\"not_charged\",\"without_acquirer\":true}"))
        .getBoolean("without_acquirer")).isTrue();
    assertThat(ManagementVerticle.verdict(Buffer.buffer(
        "{\"outcome\":\"succeeded\",\"provider_reference\":\"ch_3\",\"without_acquirer\":false}")).getBoolean("without_acquirer"))
        .isFalse();
    assertThat(ManagementVerticle.verdict(Buffer.buffer("{\"outcome\":\"declined\",\"without_acquirer\":true}")).fieldNames())
        .containsOnly("outcome", "without_acquirer");
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "[]", "\"succeeded\"", "{}", "{\"outcome\":null}", "{\"outcome\":\"refunded\"}",
      "{\"outcome\":\"succeeded\"}", "{\"outcome\":\"succeeded\",\"provider_reference\":\"\"}",
      "{\"outcome\":\"succeeded\",\"provider_reference\":7}", "{\"outcome\":\"succeeded\",\"provider_reference\":\"ch\\u0000\"}",
      "{\"outcome\":\"not_charged\",\"provider_reference\":\"ch_1\"}", "{\"outcome\":\"declined\",\"note\":\"x\"}",
      "{\"outcome\":\"declined\",\"outcome\":\"not_charged\"}",
      "{\"outcome\":\"succeeded\",\"provider_reference\":\"ch_1\",\"decline_code\":\"insufficient_funds\"}",
      // Half a surrogate pair is no text: stored, it would become "ch_?", a charge id the acquirer never gave.
      "{\"outcome\":\"succeeded\",\"provider_reference\":\"ch_\\ud800\"}",
      "{\"outcome\":\"declined\",\"decline_code\":\"dnh\\udc00\"}",
      // Taking responsibility is said plainly, not with a value read as one.
      "{\"outcome\":\"not_charged\",\"without_acquirer\":\"true\"}", "{\"outcome\":\"not_charged\",\"without_acquirer\":1}",
      "{\"outcome\":\"not_charged\",\"without_acquirer\":null}",
      "{\"outcome\":\"not_charged\",\"without_acquirer\":true,\"without_acquirer\":false}"})
  @DisplayName("anything else is refused with 400 invalid_request")
  void verdictsRefused(String body) {
    assertThatThrownBy(() -> ManagementVerticle.verdict(Buffer.buffer(body)))
        .isInstanceOfSatisfying(ApiProblem.class, p -> assertThat(p.code()).isEqualTo(ErrorCode.INVALID_REQUEST));
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
      "{\"outcome\":\"succeeded\",\"provider_reference\":\"ch_1\",\"decline_code\":\"insufficient_funds\"}"
          + "|decline_code is taken only with outcome declined, not succeeded",
      "{\"outcome\":\"not_charged\",\"provider_reference\":\"ch_1\"}"
          + "|provider_reference is taken only with outcome succeeded or declined, not not_charged",
      "{\"outcome\":\"declined\",\"note\":\"x\"}|note is no member of a verdict",
      "{\"outcome\":\"refunded\"}|outcome must be succeeded, declined or not_charged",
      "{\"outcome\":7}|outcome must be succeeded, declined or not_charged",
      "{\"provider_reference\":\"ch_1\"}|outcome is missing",
      "{\"outcome\":null}|outcome is missing",
      "not json|the body is not JSON",
      "{\"outcome\":\"declined\"|the body is not JSON",
      "`[\"succeeded\"]`|the body is JSON but not an object",
      "{\"outcome\":\"declined\"} {}|the body holds more than one JSON value",
      "{\"outcome\":\"declined\",\"outcome\":\"not_charged\"}|member outcome is sent twice",
      "{\"outcome\":\"not_charged\",\"without_acquirer\":true,\"without_acquirer\":false}"
          + "|member without_acquirer is sent twice",
      "|the body is empty"})
  @DisplayName("a refused verdict's detail names what is wrong with it first, then the shape a verdict takes")
  void refusalNamesTheFault(String body, String fault) {
    assertThatThrownBy(() -> ManagementVerticle.verdict(Buffer.buffer(body == null ? "" : body)))
        .isInstanceOfSatisfying(ApiProblem.class, p -> assertThat(p.detail()).startsWith(fault)
            .contains("send {\"outcome\": \"succeeded\""));
  }

  @Test
  @DisplayName("a decline code longer than the ledger holds (255 characters) is refused")
  void longDeclineCode() {
    assertThat(ManagementVerticle.verdict(Buffer.buffer("{\"outcome\":\"declined\",\"decline_code\":\"" + "d".repeat(255) + "\"}")))
        .isNotNull();
    assertThatThrownBy(() -> ManagementVerticle.verdict(Buffer.buffer("{\"outcome\":\"declined\",\"decline_code\":\""
        + "d".repeat(256) + "\"}"))).isInstanceOf(ApiProblem.class);
  }
}
