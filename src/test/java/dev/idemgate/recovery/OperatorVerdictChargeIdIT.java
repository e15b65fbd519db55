package dev.idemgate.recovery;

import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.payment.PaymentJson;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * An operator's verdict naming a charge id the ledger already holds: one charge is one payment, so
 * a succeeded payment holding it refuses the verdict; a declined one does not (it moved no money,
 * and acquirers whose ids name an order's attempts answer a paid retry with the declined attempt's
 * id), as on the request path (IdempotencyStore#COMPLETE).
 */
class OperatorVerdictChargeIdIT {
  private static TestGateway gateway;
  private static Http http;
  private static TestDb db;
  /** The payments the tests made, deleted at the end. */
  private static final List<String> made = new CopyOnWriteArrayList<>();

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(Map.of("IDEMGATE_LEASE", "3s", "IDEMGATE_PROVIDER_TIMEOUT", "3s"));
    http = new Http();
    db = new TestDb(http.vertx());
  }

  @AfterAll
  static void stop() {
    // Left unsettled, they would be asked about by every recovery pass on this machine for ever.
    db.query("DELETE FROM idemgate.idempotency_keys WHERE payment_id = ANY($1)", (Object) made.toArray(String[]::new));
    db.query("DELETE FROM idemgate.payments WHERE id = ANY($1)", (Object) made.toArray(String[]::new));
    db.close();
    http.close();
    gateway.close();
  }

  /** {@link ForgottenPendingPayments#make} under a new key, deleted at the end. */
  private static String forgottenPending(long amount) {
    String paymentId = ForgottenPendingPayments.make(db, http.vertx(), Http.newKey(), amount);
    made.add(paymentId);
    return paymentId;
  }

  /** An earlier payment of this acquirer in the ledger, settled as {@code status} under charge id {@code charge}. */
  private static String settledHolder(String status, String charge) {
    String id = PaymentJson.newPaymentId(Instant.now());
    made.add(id);
    db.query("INSERT INTO idemgate.payments (id, merchant_id, provider_key, amount, currency, status, provider, "
        + "provider_reference, decline_code, created_at) VALUES ($1, $2, 'pk-' || $1, 1600, 'EUR', $3, 'simulator', $4, "
        + "$5, now() - interval '2 days')", id, MERCHANT_A, status, charge, status.equals("declined") ? "do_not_honor" : null);
    return id;
  }

  private static Reply succeededAs(String paymentId, String charge) {
    return http.send(HttpMethod.POST, gateway.managementPort(), "/admin/pending/" + paymentId + "/resolve",
        Map.of("Authorization", "Bearer " + TestGateway.ADMIN_TOKEN, "Content-Type", "application/json"),
        Buffer.buffer("{\"outcome\":\"succeeded\",\"provider_reference\":\"" + charge + "\"}"));
  }

  @Test
  @DisplayName("a succeeded verdict naming the charge id of a declined payment of the same acquirer (an order's "
      + "declined attempt, whose id the acquirer gave the paid retry) is applied: the declined one moved no money")
  void declinedHolderDoesNotTakeTheChargeId() {
    String charge = "ch_attempts_" + Http.newKey();
    String declined = settledHolder("declined", charge);
    String paymentId = forgottenPending(1601);

    Reply answered = succeededAs(paymentId, charge);

    assertThat(answered.status()).as(answered.body()).isEqualTo(200);
    assertThat(answered.json().getString("resolved_as")).isEqualTo("succeeded");
    assertThat(db.scalar("SELECT status FROM idemgate.payments WHERE id = $1 AND provider_reference = $2", paymentId, charge))
        .as("the pending payment charged as %s", charge).isEqualTo("succeeded");
    assertThat(db.scalar("SELECT status FROM idemgate.payments WHERE id = $1", declined)).as("the declined attempt")
        .isEqualTo("declined");
  }

  @Test
  @DisplayName("a succeeded verdict naming the charge id of a succeeded payment of the same acquirer is refused (409), "
      + "and nothing is changed: one charge is one payment")
  void succeededHolderKeepsTheChargeId() {
    String charge = "ch_taken_" + Http.newKey();
    String holder = settledHolder("succeeded", charge);
    String paymentId = forgottenPending(1602);

    Reply answered = succeededAs(paymentId, charge);

    assertThat(answered.status()).as(answered.body()).isEqualTo(409);
    assertThat(answered.json().getString("detail")).contains("is already the charge of payment " + holder);
    assertThat(db.scalar("SELECT status FROM idemgate.payments WHERE id = $1", paymentId)).isEqualTo("pending");
    assertThat(db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE payment_id = $1", paymentId))
        .isEqualTo("PENDING");
  }
}
