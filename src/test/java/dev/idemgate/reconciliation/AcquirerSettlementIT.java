package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.provider.AcquirerServer;
import dev.idemgate.support.Http;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The acquirer writes the settlement file for what it charged, so reconciliation can be tried end to end. */
class AcquirerSettlementIT {

  @Test
  @DisplayName("GET /settlement on the acquirer lists every succeeded charge once, under the settlement columns")
  void settlementOfTheAcquirersCharges() {
    try (Http http = new Http()) {
      AcquirerServer server = new AcquirerServer(0, 0, 0, true);
      Http.await(http.vertx().deployVerticle(server));
      int port = server.actualPort();
      for (String token : List.of("tok_visa", "tok_visa", "tok_decline")) {
        Http.Reply charged = http.send(HttpMethod.POST, port, "/charges",
            Map.of("Idempotency-Key", Http.newKey(), "Content-Type", "application/json"),
            Buffer.buffer(new JsonObject().put("amount", 1500).put("currency", "EUR").put("source", token)
                .put("reference", "pay_" + token).encode()));
        assertThat(charged.status()).isEqualTo(200);
      }

      Http.Reply settlement = http.get(port, "/settlement?merchant=shop_1", null);
      assertThat(settlement.status()).isEqualTo(200);
      assertThat(settlement.header("Content-Type")).startsWith("text/csv");
      List<String> lines = settlement.body().lines().toList();
      assertThat(lines.get(0).split(",")).containsAll(SettlementReader.COLUMNS);
      assertThat(lines).hasSize(3); // header and the two succeeded charges; the decline settles nothing
      assertThat(lines.subList(1, 3)).allSatisfy(row -> assertThat(row).contains("shop_1", "1500", "EUR", "settled"));
      assertThat(http.get(port, "/settlement?seed=x", null).status()).isEqualTo(400);
    }
  }
}
