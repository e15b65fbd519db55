package dev.idemgate.recovery;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.idempotency.StoreClaim;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.payment.PaymentService;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * Recovery's inquiries and an acquirer that rate-limits them: its {@code Retry-After} (read as on
 * the charge path, AcquirerRetryAfter) sets the earliest next inquiry, for the payment asked about
 * and for every other pending one this instance would ask about meanwhile; a dead pod's claim is
 * still taken over (made pending, without an inquiry) at its usual moment.
 */
class InquiryRetryAfterIT {
  private static TestGateway gateway(UnsettlingAcquirer acquirer, String provider) {
    return TestGateway.start(Map.of("IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:" + acquirer.server.actualPort(), "IDEMGATE_PROVIDER_NAME", provider,
        "IDEMGATE_LEASE", "2s", "IDEMGATE_PROVIDER_TIMEOUT", "1s",
        "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_RECOVERY_BACKOFF", "1s,2s"));
  }

  /** Another pending payment of this acquirer, its inquiry due now. */
  private static void otherPendingPayment(TestDb db, String paymentId, String provider) {
    DuePendingPayments.insert(db, paymentId, 1701, "http " + provider);
  }

  private static void cleanUp(TestDb db, String provider, String... keys) {
    for (String key : keys) {
      db.query("DELETE FROM idemgate.idempotency_keys WHERE idempotency_key = $1 OR payment_id = $1", key);
    }
    db.query("DELETE FROM idemgate.payments WHERE merchant_id = $1 AND provider = $2", MERCHANT_A, provider);
  }

  @Test
  @DisplayName("an inquiry answered 429 with Retry-After: 120 is not sent again before 120 s: the payment's next "
      + "inquiry (and its 202's Retry-After) is that far, though the backoff says 1 s, and the pass after asks the "
      + "acquirer about no other payment meanwhile")
  void rateLimitedInquiriesWaitAsAsked() {
    String provider = "inquiry-retry-after-" + System.nanoTime();
    String key = Http.newKey();
    String otherPayment = "pay_retry_after_other_" + System.nanoTime();
    JsonObject body = Http.payment(1700, "tok_visa");
    try (UnsettlingAcquirer acquirer = UnsettlingAcquirer.rateLimiting(120);
        TestGateway gateway = gateway(acquirer, provider);
        Http http = new Http();
        TestDb db = new TestDb(http.vertx())) {
      try {
        Http.Reply first = http.pay(gateway.apiPort(), KEY_A, key, body);
        assertThat(first.status()).as(first.body()).isEqualTo(202);
        String paymentId = first.json().getString("id");

        // The first inquiry comes 1 s after the 202 (recovery_backoff's first step).
        Waits.eventually(Duration.ofSeconds(15), () -> acquirer.inquiries.get() >= 1, "recovery asks the acquirer");
        // Its answer is immediate, and recovery writes the next inquiry at once: on the backoff alone
        // it would be its next step, 2 s ahead.
        Waits.sleep(500);
        Number aheadSeconds = (Number) db.scalar("SELECT extract(epoch FROM next_inquiry_at - now()) FROM "
            + "idemgate.idempotency_keys WHERE payment_id = $1", paymentId);
        assertThat(aheadSeconds.doubleValue()).as("seconds until the next inquiry, after the acquirer asked for 120")
            .isGreaterThanOrEqualTo(115.0);
        Http.Reply again = http.pay(gateway.apiPort(), KEY_A, key, body);
        assertThat(again.status()).isEqualTo(202);
        assertThat(Integer.parseInt(again.header("Retry-After"))).as("the 202's Retry-After").isGreaterThanOrEqualTo(115);

        // Another payment of this acquirer, due now: no inquiry about it while the acquirer asked to
        // wait (rateLimitedInquiriesResumeWhenAsked shows such a payment is asked once the wait ends).
        int asked = acquirer.inquiries.get();
        otherPendingPayment(db, otherPayment, provider);
        Waits.sleep(2_000);
        assertThat(acquirer.inquiries.get()).as("inquiries sent in ten passes after the acquirer's Retry-After").isEqualTo(asked);
      } finally {
        cleanUp(db, provider, key, otherPayment);
      }
    }
  }

  @Test
  @DisplayName("with Retry-After: 2 on an inquiry, another pending payment due meanwhile is not asked about before "
      + "the 2 s have passed, and is asked about once they have")
  void rateLimitedInquiriesResumeWhenAsked() {
    String provider = "inquiry-retry-after-short-" + System.nanoTime();
    String key = Http.newKey();
    String otherPayment = "pay_retry_after_resumed_" + System.nanoTime();
    JsonObject body = Http.payment(1710, "tok_visa");
    try (UnsettlingAcquirer acquirer = UnsettlingAcquirer.rateLimiting(2);
        TestGateway gateway = gateway(acquirer, provider);
        Http http = new Http();
        TestDb db = new TestDb(http.vertx())) {
      try {
        Http.Reply first = http.pay(gateway.apiPort(), KEY_A, key, body);
        assertThat(first.status()).as(first.body()).isEqualTo(202);
        String providerKey = ProviderKeys.of(MERCHANT_A, key);

        Waits.eventually(Duration.ofSeconds(15), () -> !acquirer.asked(providerKey).isEmpty(), "recovery asks the acquirer");
        long refusedAt = acquirer.asked(providerKey).get(0);
        // Due now, and the pass that asked about the first payment has taken its records already: the
        // passes after it wait out the acquirer's 2 s, then take this one.
        otherPendingPayment(db, otherPayment, provider);
        String otherKey = "pk-" + otherPayment;
        Waits.eventually(Duration.ofSeconds(10), () -> !acquirer.asked(otherKey).isEmpty(),
            "recovery asks about the other payment once the acquirer's Retry-After has passed");
        long afterMs = (acquirer.asked(otherKey).get(0) - refusedAt) / 1_000_000;
        assertThat(afterMs).as("ms from the refused inquiry to the other payment's first inquiry").isGreaterThanOrEqualTo(2_000L);
      } finally {
        cleanUp(db, provider, key, otherPayment);
      }
    }
  }

  @Test
  @DisplayName("while recovery waits out an acquirer's Retry-After: 300, a dead pod's claim past its lease is still "
      + "taken over at its usual moment: made pending without asking the acquirer, so that its retry gets 202 (its "
      + "Retry-After the wait's end), not 409 for five minutes")
  void deadPodsClaimIsTakenOverDuringTheWait() {
    String provider = "inquiry-retry-after-takeover-" + System.nanoTime();
    String key = Http.newKey();
    String deadKey = Http.newKey();
    JsonObject body = Http.payment(1720, "tok_visa");
    JsonObject deadBody = Http.payment(1721, "tok_visa");
    try (UnsettlingAcquirer acquirer = UnsettlingAcquirer.rateLimiting(300);
        TestGateway gateway = gateway(acquirer, provider);
        Http http = new Http();
        TestDb db = new TestDb(http.vertx())) {
      try {
        Http.Reply first = http.pay(gateway.apiPort(), KEY_A, key, body);
        assertThat(first.status()).as(first.body()).isEqualTo(202);
        Waits.eventually(Duration.ofSeconds(15), () -> acquirer.inquiries.get() >= 1, "recovery asks the acquirer");
        Waits.sleep(300);
        int asked = acquirer.inquiries.get();

        // A pod died holding this claim: its lease ran out long ago, past the takeover grace.
        IdempotencyStore store = new IdempotencyStore(db.pool(), http.vertx().getOrCreateContext(), 2, Duration.ofSeconds(5),
            Duration.ofSeconds(2), "http " + provider);
        ClaimRequest claim = new ClaimRequest(MERCHANT_A, new IdempotencyKey(deadKey), PaymentService.fingerprint(deadBody),
            PaymentJson.newPaymentId(Instant.now()), deadBody.getLong("amount"), deadBody.getString("currency"),
            deadBody.getString("merchant_reference"), null, null);
        assertThat(Http.await(store.claim(claim))).isInstanceOf(StoreClaim.Claimed.class);
        db.query("UPDATE idemgate.idempotency_keys SET lease_expires_at = now() - interval '1 minute', "
            + "created_at = now() - interval '1 minute' WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, deadKey);

        // Recovery takes it over within a pass (200 ms); the rest is margin for a loaded machine.
        Waits.eventually(Duration.ofSeconds(5), () -> "PENDING".equals(db.keyState(MERCHANT_A, deadKey)),
            () -> "recovery takes the dead pod's claim over during the acquirer's wait (state now "
                + db.keyState(MERCHANT_A, deadKey) + ")");
        Http.Reply retry = http.pay(gateway.apiPort(), KEY_A, deadKey, deadBody);
        assertThat(retry.status()).as(retry.body()).isEqualTo(202);
        assertThat(retry.json().getString("id")).isEqualTo(claim.paymentId());
        assertThat(Integer.parseInt(retry.header("Retry-After"))).as("the 202's Retry-After: the acquirer's wait's end")
            .isBetween(290, 302);
        assertThat(acquirer.asked(ProviderKeys.of(MERCHANT_A, deadKey))).as("inquiries about the dead pod's payment").isEmpty();
        assertThat(acquirer.inquiries.get()).as("inquiries sent during the acquirer's wait").isEqualTo(asked);
      } finally {
        cleanUp(db, provider, key, deadKey);
      }
    }
  }
}
