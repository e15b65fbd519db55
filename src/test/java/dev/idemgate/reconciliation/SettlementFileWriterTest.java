package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.StringWriter;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class SettlementFileWriterTest {
  private static SettlementFileWriter.Charge charge(String id, Instant at) {
    return new SettlementFileWriter.Charge(id, "ch_" + id, null, "shop", 1_000, "EUR", "succeeded", at);
  }

  /** The settlement_id of each payment's first row, for a file of {@code charges} written with {@code seed}. */
  private static Map<String, String> firstIds(List<SettlementFileWriter.Charge> charges, long seed) throws Exception {
    Map<String, String> ids = new HashMap<>();
    SettlementFileWriter writer = new SettlementFileWriter(new StringWriter(), Map.of(), SettlementFileWriter.Plan.none(),
        seed, Instant.now(), w -> {
          if (w.line() > 0 && w.paymentId() != null) {
            ids.putIfAbsent(w.paymentId(), w.settlementId());
          }
        });
    charges.forEach(writer::write);
    writer.close();
    return ids;
  }

  @Test
  @DisplayName("a payment's settlement keeps its settlement_id when the file is written again with more payments before "
      + "it or another seed: reconciliation's history takes another id for a second settlement, a duplicate charge")
  void aPaymentsSettlementKeepsItsId() throws Exception {
    Instant t = Instant.now().minus(Duration.ofDays(3));
    Map<String, String> before = firstIds(List.of(charge("pay_a", t), charge("pay_b", t.plusSeconds(60))), 42);
    Map<String, String> after = firstIds(List.of(charge("pay_new", t.minusSeconds(60)), charge("pay_a", t),
        charge("pay_b", t.plusSeconds(60))), 7);

    assertThat(after.get("pay_a")).isEqualTo(before.get("pay_a"));
    assertThat(after.get("pay_b")).isEqualTo(before.get("pay_b"));
    assertThat(after.get("pay_a")).isNotEqualTo(after.get("pay_b"));
  }
}
