package dev.idemgate.recovery;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * Recovery's inquiries and an acquirer that rate-limits them: its {@code Retry-After} (read as on
 * the charge path, AcquirerRetryAfter) sets the earliest next inquiry, for the payment asked about
 * and for every other one this instance would ask about meanwhile.
 */
class InquiryRetryAfterIT {
  @Test
  @DisplayName("an inquiry answered 429 with Retry-After: 120 is not sent again before 120 s: the payment's next "
      + "inquiry (and its 202's Retry-After) is that far, though the backoff says 1 s, and the pass after asks the "
      + "acquirer about no other payment meanwhile")
  void rateLimitedInquiriesWaitAsAsked() {
    AtomicInteger inquiries = new AtomicInteger();
    Vertx vertx = Vertx.vertx();
    HttpServer acquirer = Http.await(vertx.createHttpServer().requestHandler(request -> request.body().onSuccess(b -> {
      if (request.method() == HttpMethod.GET) {
        inquiries.incrementAndGet();
        request.response().setStatusCode(429).putHeader("Retry-After", "120").end("{}");
      } else {
        // The charge's answer is lost: 500 may hide a charge, so the payment is pending (202).
        request.response().setStatusCode(500).end("{}");
      }
    })).listen(0, "127.0.0.1"));
    String provider = "inquiry-retry-after-" + System.nanoTime();
    String key = Http.newKey();
    String otherPayment = "pay_retry_after_other_" + System.nanoTime();
    JsonObject body = Http.payment(1700, "tok_visa");
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PROVIDER", "http",
            "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:" + acquirer.actualPort(), "IDEMGATE_PROVIDER_NAME", provider,
            "IDEMGATE_LEASE", "2s", "IDEMGATE_PROVIDER_TIMEOUT", "1s",
            "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_RECOVERY_BACKOFF", "1s,2s"));
        Http http = new Http();
        TestDb db = new TestDb(http.vertx())) {
      try {
        Http.Reply first = http.pay(gateway.apiPort(), KEY_A, key, body);
        assertThat(first.status()).as(first.body()).isEqualTo(202);
        String paymentId = first.json().getString("id");

        // The first inquiry comes 5 s after the 202 (PaymentService#FIRST_INQUIRY).
        Waits.eventually(Duration.ofSeconds(15), () -> inquiries.get() >= 1, "recovery asks the acquirer");
        // Its answer is immediate, and recovery writes the next inquiry at once; with the backoff's 1 s,
        // recovery would have asked again (and written 2 s) by the time it is read.
        Waits.sleep(500);
        Number aheadSeconds = (Number) db.scalar("SELECT extract(epoch FROM next_inquiry_at - now()) FROM "
            + "idemgate.idempotency_keys WHERE payment_id = $1", paymentId);
        assertThat(aheadSeconds.doubleValue()).as("seconds until the next inquiry, after the acquirer asked for 120")
            .isGreaterThanOrEqualTo(115.0);
        Http.Reply again = http.pay(gateway.apiPort(), KEY_A, key, body);
        assertThat(again.status()).isEqualTo(202);
        assertThat(Integer.parseInt(again.header("Retry-After"))).as("the 202's Retry-After").isGreaterThanOrEqualTo(115);

        // Another payment of this acquirer, due now: no inquiry about it while the acquirer asked to wait.
        int asked = inquiries.get();
        db.query("""
            INSERT INTO idemgate.idempotency_keys (merchant_id, idempotency_key, fingerprint, state, epoch, generation,
              payment_id, provider_key, lease_expires_at, amount, currency, response_status, response_body, expires_at,
              inquiry_attempts, next_inquiry_at, created_at, provider_id)
            VALUES ($1, $2, 'f', 'PENDING', 1, 1, $2, 'pk-' || $2, now() - interval '5 seconds', 1701, 'EUR', 202, '{}',
              now() + interval '1 day', 1, now(), date_trunc('milliseconds', now() - interval '5 seconds'), $3)""",
            MERCHANT_A, otherPayment, "http " + provider);
        Waits.sleep(2_000);
        assertThat(inquiries.get()).as("inquiries sent in ten passes after the acquirer's Retry-After").isEqualTo(asked);
      } finally {
        db.query("DELETE FROM idemgate.idempotency_keys WHERE idempotency_key = $1 OR payment_id = $2", key, otherPayment);
        db.query("DELETE FROM idemgate.payments WHERE merchant_id = $1 AND provider = $2", MERCHANT_A, provider);
      }
    } finally {
      Http.await(vertx.close());
    }
  }
}
