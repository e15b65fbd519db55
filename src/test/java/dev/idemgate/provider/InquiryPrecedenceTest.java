package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * An inquiry that lists several charges under one provider key (an acquirer without deduplication,
 * such as the standalone acquirer's --dedup off, or one that lists every attempt): a charge that is
 * not settled, or a success the ledger cannot hold, is not overruled by a decline listed after it.
 */
class InquiryPrecedenceTest {
  private static final ChargeInquiry K = new ChargeInquiry("k", 1999, "EUR");

  private static JsonObject inquiry(JsonObject... charges) {
    JsonArray list = new JsonArray();
    for (JsonObject c : charges) {
      list.add(c);
    }
    return new JsonObject().put("idempotency_key", "k").put("requests", charges.length).put("charges", list);
  }

  private static final JsonObject DECLINED =
      new JsonObject().put("id", "ch_2").put("status", "declined").put("decline_code", "card_declined");

  @Test
  @DisplayName("an inquiry listing a charge still processing and then a decline is UNKNOWN, not DECLINED: the "
      + "first may still charge")
  void processingThenDeclinedIsUnknown() {
    JsonObject answer = inquiry(new JsonObject().put("id", "ch_1").put("status", "processing"), DECLINED);
    assertThat(HttpProvider.mapInquiry(200, answer.toBuffer(), K).outcome())
        .as("a charge the acquirer may still complete is not settled by a later decline")
        .isInstanceOf(ProviderOutcome.Unknown.class);
  }

  @Test
  @DisplayName("an inquiry listing a succeeded charge whose id cannot be stored and then a decline is UNKNOWN, not "
      + "DECLINED: money moved")
  void unstorableSuccessThenDeclinedIsUnknown() {
    JsonObject answer = inquiry(new JsonObject().put("id", "ch_" + "x".repeat(300)).put("status", "succeeded"), DECLINED);
    assertThat(HttpProvider.mapInquiry(200, answer.toBuffer(), K).outcome())
        .as("the acquirer reports a succeeded charge: it must not be recorded as declined")
        .isInstanceOf(ProviderOutcome.Unknown.class);
  }
}
