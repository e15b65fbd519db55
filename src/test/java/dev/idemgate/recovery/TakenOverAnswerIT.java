package dev.idemgate.recovery;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.payment.PaymentService;
import dev.idemgate.provider.ChargeRequest;
import dev.idemgate.provider.LocalCodec;
import dev.idemgate.provider.ProviderOutcome;
import dev.idemgate.provider.ProviderVerticle;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.ScratchDatabase;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Map;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A charge whose provider answers after its claim's lease ran out and after recovery took the
 * record over: the client is answered with what the ledger holds, the answer its retries get, and
 * never with a provider's answer that was not written.
 *
 * <p>Two instances share a database of the test's own. The payer answers the client: its charges
 * ({@code tok_slow}) take 6 s, past its 2 s lease. The recoverer only runs recovery: with a
 * {@code provider_timeout} of 500 ms it takes a record over 1.5 s after its lease, while the payer's
 * charge is still at the provider. Its acquirer is its own in-process simulator, which never saw that
 * charge (or holds a declined one under its provider key): it stands for an acquirer whose inquiry
 * disagrees with the answer the charge got, so that recovery settles the record other than the
 * provider answered the payer.
 */
class TakenOverAnswerIT {
  private static final long AMOUNT = 1_234;

  private static Http http;
  private static ScratchDatabase scratch;
  private static TestDb db;
  private static String url;
  private static TestGateway payer;

  @BeforeAll
  static void start() {
    http = new Http();
    scratch = ScratchDatabase.create(http.vertx(), "idemgate_takeover");
    url = scratch.url();
    db = new TestDb(http.vertx(), url);
    payer = TestGateway.start(Map.of(
        "IDEMGATE_PG_URL", url,
        "IDEMGATE_LEASE", "2s",
        "IDEMGATE_PROVIDER_TIMEOUT", "10s",
        "IDEMGATE_SIMULATOR_SLOW_MS", "6000",
        "IDEMGATE_STORE_TIMEOUT", "1s",
        // Its own recovery stays out of the way: only the recoverer settles records here.
        "IDEMGATE_RECOVERY_INTERVAL", "1h",
        "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"));
  }

  @AfterAll
  static void stop() {
    payer.close();
    db.close();
    scratch.close();
    http.close();
  }

  /**
   * An instance that takes records over 1.5 s after their lease; its late-charge window (when it
   * releases a record its acquirer never saw) is {@code lease} + 1 s.
   */
  private static TestGateway recoverer(String lease) {
    return TestGateway.start(Map.of(
        "IDEMGATE_PG_URL", url,
        "IDEMGATE_LEASE", lease,
        "IDEMGATE_PROVIDER_TIMEOUT", "500ms",
        "IDEMGATE_RECOVERY_INTERVAL", "200ms",
        "IDEMGATE_RECOVERY_BACKOFF", "5s,1h"));
  }

  @Test
  @DisplayName("recovery completed the record first, declined, while the provider told the payer succeeded: the client "
      + "gets the stored 402, the answer its retry replays, not a 201 no retry gives")
  void recoveryCompletedItFirst() {
    try (TestGateway recoverer = recoverer("2s"); CapturedLogs logs = CapturedLogs.of(PaymentService.class)) {
      String key = Http.newKey();
      JsonObject body = Http.payment(AMOUNT, "tok_slow");
      declinedAt(recoverer, key);

      Future<Reply> first = payWhile(key, body, () -> Integer.valueOf(402).equals(db.scalar(
          "SELECT response_status FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
          MERCHANT_A, key)), "recovery completes the record as declined");

      Reply answer = Http.await(first);
      Reply retry = http.pay(payer.apiPort(), KEY_A, key, body);
      assertThat(tookOver(logs)).as("the premise: the payer's own write was fenced").isTrue();
      assertThat(answer.status()).as(answer.body()).isEqualTo(402);
      assertThat(answer.json().getString("status")).isEqualTo("declined");
      assertSameAnswer(answer, retry);
      assertThat(answer.header("Idempotency-Key-Expires")).isEqualTo(retry.header("Idempotency-Key-Expires")).isNotNull();
    }
  }

  @Test
  @DisplayName("recovery released the record first (its acquirer never saw the charge) while the provider told the payer "
      + "succeeded: the client gets 202 pending, not a 201 the ledger does not hold; its retry goes out under the same "
      + "provider key, so the provider's one charge is recorded")
  void recoveryReleasedItFirst() {
    String key = Http.newKey();
    JsonObject body = Http.payment(AMOUNT, "tok_slow");
    Reply answer;
    try (TestGateway recoverer = recoverer("2s"); CapturedLogs logs = CapturedLogs.of(PaymentService.class)) {
      Future<Reply> first = http.payAsync(payer.apiPort(), KEY_A, key, body.encode(), Map.of());
      String paymentId = claimedPayment(key);
      Waits.eventually(Duration.ofSeconds(15), () -> db.scalar("SELECT reason FROM idemgate.released_payments WHERE id = $1",
          paymentId) != null, "recovery releases the record");
      assertThat(first.isComplete()).as("the premise: recovery released it while the charge was at the provider").isFalse();

      answer = Http.await(first);
      assertThat(tookOver(logs)).as("the premise: the payer's own write was fenced").isTrue();
      assertThat(answer.status()).as("a 201 here would be replayed by no retry: " + answer.body()).isEqualTo(202);
      assertThat(answer.json().getString("status")).isEqualTo("pending");
      assertThat(answer.json().getString("id")).isEqualTo(paymentId);
    }
    // The recoverer is gone, so that it does not take the retry's claim over in turn.
    Reply retry = http.pay(payer.apiPort(), KEY_A, key, body);
    assertThat(retry.status()).as(retry.body()).isEqualTo(201);
    JsonObject charges = http.get(payer.managementPort(),
        "/admin/simulator/charges?idempotency_key=" + ProviderKeys.of(MERCHANT_A, key), TestGateway.ADMIN_TOKEN).json();
    assertThat(charges.getJsonArray("charges")).as("the provider deduplicated the retry's charge").hasSize(1);
    assertThat(retry.json().getString("provider_reference"))
        .isEqualTo(charges.getJsonArray("charges").getJsonObject(0).getString("id"));
  }

  @Test
  @DisplayName("recovery still works on the record (PENDING): the provider's 201 is written over recovery's claim, and "
      + "the client gets it, as its retry does")
  void writtenOverRecoverysClaim() {
    try (TestGateway recoverer = recoverer("30s"); CapturedLogs logs = CapturedLogs.of(PaymentService.class)) {
      String key = Http.newKey();
      JsonObject body = Http.payment(AMOUNT, "tok_slow");
      Future<Reply> first = payWhile(key, body, () -> "PENDING".equals(state(key)), "recovery makes the record PENDING");

      Reply answer = Http.await(first);
      Reply retry = http.pay(payer.apiPort(), KEY_A, key, body);
      assertThat(tookOver(logs)).as("the premise: the payer's own write was fenced").isTrue();
      assertThat(state(key)).isEqualTo("COMPLETED");
      assertThat(answer.status()).as(answer.body()).isEqualTo(201);
      assertSameAnswer(answer, retry);
    }
  }

  @Test
  @DisplayName("the write over recovery's claim fails (PostgreSQL held it past store_timeout): the client gets 202 "
      + "pending, the answer its retry gets, not a 201 that was never written")
  void writeOverRecoveryFails() {
    // A late-charge window of 31 s: the recoverer keeps the record PENDING, it does not release it.
    try (TestGateway recoverer = recoverer("30s"); CapturedLogs logs = CapturedLogs.of(PaymentService.class)) {
      String key = Http.newKey();
      JsonObject body = Http.payment(AMOUNT, "tok_slow");
      Future<Reply> first = payWhile(key, body, () -> "PENDING".equals(state(key)), "recovery makes the record PENDING");

      Reply answer;
      // The payer's own write, fenced on the epoch, skips the record without waiting for its lock;
      // the write over recovery's claim waits for it past store_timeout (1 s).
      try (TestDb.RecordLock lock = db.lockRecord(MERCHANT_A, key)) {
        answer = Http.await(first);
        Waits.eventually(Duration.ofSeconds(10), () -> Long.valueOf(0).equals(db.scalar("SELECT count(*) FROM pg_stat_activity "
            + "WHERE datname = $1 AND wait_event_type = 'Lock'", scratch.name())),
            "PostgreSQL abandons the waiting write (statement_timeout), so that it cannot land once the lock goes");
      }
      Reply retry = http.pay(payer.apiPort(), KEY_A, key, body);
      assertThat(tookOver(logs)).as("the premise: the payer's own write was fenced").isTrue();
      assertThat(state(key)).isEqualTo("PENDING");
      assertThat(answer.status()).as(answer.body()).isEqualTo(202);
      assertThat(answer.json().getString("status")).isEqualTo("pending");
      assertSameAnswer(answer, retry);
    }
  }

  /**
   * Sends the payment (its charge takes 6 s at the provider) and waits until recovery did
   * {@code what}, which must happen while the charge is still out.
   */
  private static Future<Reply> payWhile(String key, JsonObject body, BooleanSupplier recoveryDid, String what) {
    Future<Reply> first = http.payAsync(payer.apiPort(), KEY_A, key, body.encode(), Map.of());
    Waits.eventually(Duration.ofSeconds(15), recoveryDid, what);
    assertThat(first.isComplete()).as("the premise: %s while the charge was at the provider", what).isFalse();
    return first;
  }

  /** The recoverer's acquirer takes a declined charge under the key's provider key. */
  private static void declinedAt(TestGateway recoverer, String key) {
    ChargeRequest charge = new ChargeRequest(ProviderKeys.of(MERCHANT_A, key), AMOUNT, "EUR", "tok_decline", "pay_elsewhere");
    Object outcome = Http.await(recoverer.gateway().vertx().eventBus()
        .request(ProviderVerticle.CHARGE, charge, new DeliveryOptions().setCodecName(LocalCodec.NAME))).body();
    assertThat(outcome).isInstanceOf(ProviderOutcome.Declined.class);
  }

  /** The payment id of the key's claim, once it committed. */
  private static String claimedPayment(String key) {
    Waits.eventually(Duration.ofSeconds(5), () -> "PROCESSING".equals(state(key)), "the claim commits");
    return (String) db.scalar("SELECT payment_id FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        MERCHANT_A, key);
  }

  private static String state(String key) {
    return (String) db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        MERCHANT_A, key);
  }

  private static boolean tookOver(CapturedLogs logs) {
    return logs.events().stream().anyMatch(e -> e.getFormattedMessage().contains("was taken over before it completed"));
  }

  /** The client's answer is the one its retry gets: status, bytes and payment; the retry's is a replay. */
  private static void assertSameAnswer(Reply answer, Reply retry) {
    assertThat(retry.status()).as("the retry's status (the client was answered " + answer.status() + ")")
        .isEqualTo(answer.status());
    assertThat(retry.body()).isEqualTo(answer.body());
    assertThat(retry.header("Location")).isEqualTo(answer.header("Location"));
    assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(answer.header("Idempotent-Replayed")).isNull();
  }
}
