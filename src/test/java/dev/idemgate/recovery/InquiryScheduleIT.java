package dev.idemgate.recovery;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A pending payment's inquiries follow {@code recovery_backoff} from its 202: the first step is the
 * wait before the first inquiry, each later step the wait after the inquiry before. Until session 44
 * the first inquiry came a fixed 5 s after the 202 whatever the setting said, and the first step was
 * then used twice (5 s, 5 s, 30 s, … by default, where the design lists 5s, 30s, 2m, 10m, 1h).
 */
class InquiryScheduleIT {
  @Test
  @DisplayName("with recovery_backoff 1s,3s,1h a pending payment is first asked about 1 s after its 202 (its Retry-After "
      + "says 3: the step, a 200 ms pass and a second), again 3 s later, then not for an hour")
  void inquiriesFollowTheScheduleFromThe202() {
    String provider = "inquiry-schedule-" + System.nanoTime();
    String key = Http.newKey();
    JsonObject body = Http.payment(1730, "tok_visa");
    try (UnsettlingAcquirer acquirer = UnsettlingAcquirer.failing();
        TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PROVIDER", "http",
            "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:" + acquirer.server.actualPort(), "IDEMGATE_PROVIDER_NAME", provider,
            "IDEMGATE_LEASE", "2s", "IDEMGATE_PROVIDER_TIMEOUT", "1s",
            "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_RECOVERY_BACKOFF", "1s,3s,1h"));
        Http http = new Http();
        TestDb db = new TestDb(http.vertx())) {
      try {
        Http.Reply pending = http.pay(gateway.apiPort(), KEY_A, key, body);
        long answeredAt = System.nanoTime();
        assertThat(pending.status()).as(pending.body()).isEqualTo(202);
        assertThat(pending.header("Retry-After")).as("the 202's Retry-After").isEqualTo("3");
        String providerKey = ProviderKeys.of(MERCHANT_A, key);

        Waits.eventually(Duration.ofSeconds(10), () -> acquirer.asked(providerKey).size() >= 2, "two inquiries");
        List<Long> asked = acquirer.asked(providerKey);
        long firstAfterMs = (asked.get(0) - answeredAt) / 1_000_000;
        long secondAfterMs = (asked.get(1) - asked.get(0)) / 1_000_000;
        // The pending record is written before the 202 leaves, so the first step is counted from a
        // moment a little before answeredAt; a pass comes within 200 ms of it falling due.
        assertThat(firstAfterMs).as("ms from the 202 to the first inquiry (recovery_backoff's first step, 1 s)")
            .isBetween(500L, 2_500L);
        assertThat(secondAfterMs).as("ms from the first inquiry to the second (its second step, 3 s)")
            .isBetween(2_900L, 4_500L);

        Waits.sleep(300); // the second inquiry's answer is immediate; its record's next inquiry is written at once
        Number aheadSeconds = (Number) db.scalar("SELECT extract(epoch FROM next_inquiry_at - now()) FROM "
            + "idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
        assertThat(aheadSeconds.doubleValue()).as("seconds until the third inquiry (the third step, 1 h)")
            .isBetween(3_500.0, 3_600.0);
        assertThat(acquirer.asked(providerKey)).as("inquiries").hasSize(2);
      } finally {
        db.query("DELETE FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
        db.query("DELETE FROM idemgate.payments WHERE merchant_id = $1 AND provider = $2", MERCHANT_A, provider);
      }
    }
  }
}
