package dev.idemgate.recovery;

import static dev.idemgate.support.Waits.eventually;
import static dev.idemgate.support.Waits.sleep;
import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.idempotency.StoreClaim;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.payment.PaymentService;
import dev.idemgate.provider.AcquirerServer;
import dev.idemgate.provider.ChargeRequest;
import dev.idemgate.provider.LocalCodec;
import dev.idemgate.provider.ProviderOutcome;
import dev.idemgate.provider.ProviderVerticle;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.RedisGate;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** Recovery finishes what the request path could not, and fencing keeps late owners out. */
class RecoveryIT {
  private static TestGateway gateway;
  private static Http http;
  private static TestDb db;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(Map.of(
        "IDEMGATE_LEASE", "3s",
        "IDEMGATE_PROVIDER_TIMEOUT", "3s",
        "IDEMGATE_RECOVERY_INTERVAL", "200ms",
        "IDEMGATE_RECOVERY_BACKOFF", "5s,300ms,600ms",
        "IDEMGATE_SIMULATOR_SLOW_MS", "2500",
        "IDEMGATE_MERCHANT_KEY_TTL", TestGateway.MERCHANT_B + "=2s"));
    http = new Http();
    db = new TestDb(http.vertx());
  }

  @AfterAll
  static void stop() {
    db.close();
    http.close();
    gateway.close();
  }


  private static String state(String merchant, String key) {
    return (String) db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        merchant, key);
  }

  private static int charges(String merchant, String key) {
    return http.get(gateway.managementPort(), "/admin/simulator/charges?idempotency_key=" + ProviderKeys.of(merchant, key),
        TestGateway.ADMIN_TOKEN).json().getJsonArray("charges").size();
  }

  /**
   * Writes a PROCESSING claim as a crashed instance would have left it, claimed a minute ago, its
   * lease long expired; returns its payment id.
   */
  private static String abandonedClaim(String key, JsonObject body) {
    return abandonedClaim(key, body, "simulator", Duration.ofMinutes(1));
  }

  private static String abandonedClaim(String key, JsonObject body, String providerId) {
    return abandonedClaim(key, body, providerId, Duration.ofMinutes(1));
  }

  /** The same, claimed {@code claimedAgo}: one statement after the claim, whose fresh lease keeps recovery away until then. */
  private static String abandonedClaim(String key, JsonObject body, String providerId, Duration claimedAgo) {
    String paymentId = claim(key, body, providerId);
    db.query("UPDATE idemgate.idempotency_keys SET lease_expires_at = now() - interval '1 minute', "
        + "created_at = now() - $3 * interval '1 millisecond' WHERE merchant_id = $1 AND idempotency_key = $2",
        MERCHANT_A, key, claimedAgo.toMillis());
    return paymentId;
  }

  /** A claim of MERCHANT_A just made, with its 3 s lease (recovery leaves it alone for 7 s); returns its payment id. */
  private static String claim(String key, JsonObject body, String providerId) {
    IdempotencyStore store = new IdempotencyStore(db.pool(), http.vertx().getOrCreateContext(), 2, Duration.ofSeconds(5),
        Duration.ofSeconds(3), providerId);
    ClaimRequest claim = new ClaimRequest(MERCHANT_A, new IdempotencyKey(key), PaymentService.fingerprint(body),
        PaymentJson.newPaymentId(Instant.now()), body.getLong("amount"), body.getString("currency"),
        body.getString("merchant_reference"), null, null);
    assertThat(Http.await(store.claim(claim))).isInstanceOf(StoreClaim.Claimed.class);
    return claim.paymentId();
  }

  @Test
  @DisplayName("an answer lost after charging gives 202 pending; recovery finds the charge and later retries replay 201")
  void pendingIsResolvedFromTheProvider() {
    String key = Http.newKey();
    JsonObject body = Http.payment(900, "tok_timeout_after_charge");
    Reply first = http.pay(gateway.apiPort(), KEY_A, key, body);
    assertThat(first.status()).isEqualTo(202);
    assertThat(first.json().getString("status")).isEqualTo("pending");

    eventually(Duration.ofSeconds(15), () -> "COMPLETED".equals(state(MERCHANT_A, key)), "recovery completes the record");
    Reply replay = http.pay(gateway.apiPort(), KEY_A, key, body);
    assertThat(replay.status()).isEqualTo(201);
    assertThat(replay.json().getString("status")).isEqualTo("succeeded");
    assertThat(replay.json().getString("id")).isEqualTo(first.json().getString("id"));
    assertThat(replay.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(http.get(gateway.apiPort(), first.header("Location"), KEY_A).json().getString("status")).isEqualTo("succeeded");
    assertThat(charges(MERCHANT_A, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("a 202 pending says in Retry-After when recovery will have asked the provider again: the first answer "
      + "after the first inquiry (5 s), a replay after the record's next inquiry, each plus a recovery pass and a second")
  void pendingAnswersSayWhenToAskAgain() {
    String key = Http.newKey();
    JsonObject body = Http.payment(905, "tok_timeout_after_charge");
    Reply first = http.pay(gateway.apiPort(), KEY_A, key, body);
    assertThat(first.status()).isEqualTo(202);
    // The first inquiry 5 s after, the pass that takes it within 200 ms, a second for its answer.
    assertThat(first.header("Retry-After")).as("the first 202").isEqualTo("7");

    String quiet = Http.newKey();
    JsonObject quietBody = Http.payment(906, "tok_visa");
    claim(quiet, quietBody, "simulator");
    quietPending(quiet, false);
    Reply replay = http.pay(gateway.apiPort(), KEY_A, quiet, quietBody);
    assertThat(replay.status()).isEqualTo(202);
    assertThat(replay.header("Idempotent-Replayed")).isEqualTo("true");
    // Its next inquiry an hour away, less the moments this test took.
    assertThat(Integer.parseInt(replay.header("Retry-After"))).as("a pending payment's replay").isBetween(3590, 3602);
    forget(quiet);
    eventually(Duration.ofSeconds(15), () -> "COMPLETED".equals(state(MERCHANT_A, key)), "recovery completes the first");
  }

  @Test
  @DisplayName("a claim left PROCESSING by a dead instance, whose charge reached the provider, is completed by recovery")
  void expiredLeaseWithChargeIsCompleted() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1100, "tok_visa");
    abandonedClaim(key, body);
    // The dead instance had sent its charge before it died.
    chargeAtTheAcquirer(key, 1100);

    eventually(Duration.ofSeconds(15), () -> "COMPLETED".equals(state(MERCHANT_A, key)), "recovery completes the record");
    Reply retry = http.pay(gateway.apiPort(), KEY_A, key, body);
    assertThat(retry.status()).isEqualTo(201);
    assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(charges(MERCHANT_A, key)).isEqualTo(1);
    assertThat(db.scalar("SELECT status FROM idemgate.payments WHERE provider_key = $1", ProviderKeys.of(MERCHANT_A, key)))
        .isEqualTo("succeeded");
  }

  @Test
  @DisplayName("a claim left PROCESSING whose charge the provider never saw is released: its payment id answers "
      + "not_charged, and a retry is processed as new")
  void expiredLeaseWithoutChargeIsReleased() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1200, "tok_visa");
    // No ledger row: the payment is kept as released from the record. Its id may have reached the
    // client in a 202 all the same (the claim's request answers 202 when PostgreSQL did not take
    // its pending outcome, or when recovery had taken the record over).
    String paymentId = abandonedClaim(key, body);

    eventually(Duration.ofSeconds(15), () -> state(MERCHANT_A, key) == null, "recovery releases the record");
    notChargedThenChargedAnew(key, body, paymentId, "provider_never_saw_it");
  }

  @Test
  @DisplayName("a payment answered 202 and then released (the provider never saw it): GET of its id gives its merchant "
      + "200 with status not_charged (404 to another merchant), and the retry with its key is charged under a new id")
  void releasedPendingPaymentReadsNotCharged() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1205, "tok_visa");
    // Claimed just now, as far as recovery can tell: a late charge could still land, so recovery
    // makes it pending (a ledger row) and keeps asking instead of releasing it.
    String paymentId = abandonedClaim(key, body, "simulator", Duration.ZERO);
    eventually(Duration.ofSeconds(15), () -> "PENDING".equals(state(MERCHANT_A, key)), "recovery makes it pending");
    Reply pending = http.pay(gateway.apiPort(), KEY_A, key, body);
    assertThat(pending.status()).isEqualTo(202);
    assertThat(pending.json().getString("id")).isEqualTo(paymentId);
    assertThat(http.get(gateway.apiPort(), pending.header("Location"), KEY_A).json().getString("status")).isEqualTo("pending");

    // The late-charge window (lease + 2 x provider timeout) ends: moved back rather than waited for.
    db.query("UPDATE idemgate.idempotency_keys SET created_at = created_at - interval '1 minute' "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
    eventually(Duration.ofSeconds(15), () -> state(MERCHANT_A, key) == null, "recovery releases the record");
    assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE id = $1", paymentId)).isEqualTo(0L);
    JsonObject released = notChargedThenChargedAnew(key, body, paymentId, "provider_never_saw_it");
    assertThat(released).as("the payment its 202 showed, but not charged")
        .isEqualTo(pending.json().put("status", "not_charged"));
  }

  @Test
  @DisplayName("a released payment whose charge lands at the acquirer after all, and is answered to the retry with its "
      + "key (same provider key), no longer reads not_charged: GET of its id gives the charge and the payment that holds it")
  void releasedPaymentChargedLateReadsItsCharge() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1207, "tok_visa");
    String releasedId = abandonedClaim(key, body);
    eventually(Duration.ofSeconds(15), () -> state(MERCHANT_A, key) == null, "recovery releases the record");
    assertThat(http.get(gateway.apiPort(), "/v1/payments/" + releasedId, KEY_A).json().getString("status"))
        .isEqualTo("not_charged");

    // The released payment's charge reaches the acquirer late (an owner whose clock broke the send
    // window, an acquirer that forgot): its retry goes out under the same provider key and is answered with it.
    chargeAtTheAcquirer(key, body.getLong("amount"));
    JsonObject retry = chargedAnew(key, body).json();

    Reply released = http.get(gateway.apiPort(), "/v1/payments/" + releasedId, KEY_A);
    assertThat(released.status()).as(released.body()).isEqualTo(200);
    JsonObject payment = released.json();
    assertThat(payment.getString("id")).isEqualTo(releasedId);
    assertThat(payment.getString("status")).as("the key's one charge, which this payment's request may have made")
        .isEqualTo("succeeded");
    assertThat(payment.getString("provider_reference")).isEqualTo(retry.getString("provider_reference"));
    assertThat(payment.getString("charged_as")).isEqualTo(retry.getString("id"));
    assertThat(retry.containsKey("charged_as")).as("a payment's own answer has no pointer").isFalse();
  }

  @Test
  @DisplayName("a claim older than provider_key_retention whose charge the provider says it never saw is not released "
      + "(the provider may have forgotten it): it stays pending, its retry gets 202 and no charge, /admin/pending marks it")
  void neverSeenIsNotBelievedPastTheProvidersMemory() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1210, "tok_visa");
    forgottenPending(key, body);
    eventually(Duration.ofSeconds(10), () -> ((Integer) db.scalar("SELECT inquiry_attempts FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key)) >= 2, "recovery asks again and still keeps it");
    assertThat(state(MERCHANT_A, key)).isEqualTo("PENDING");
    Reply retry = http.pay(gateway.apiPort(), KEY_A, key, body);
    assertThat(retry.status()).isEqualTo(202);
    assertThat(retry.json().getString("status")).isEqualTo("pending");
    assertThat(charges(MERCHANT_A, key)).isZero();
    JsonObject listed = pendingList(gateway, "?payment_id=" + paymentId(key)).getJsonArray("unresolved").stream()
        .map(JsonObject.class::cast)
        .filter(r -> r.getString("key_sha256").equals(dev.idemgate.idempotency.Fingerprint.sha256Hex(key)))
        .findFirst().orElseThrow();
    assertThat(listed.getBoolean("beyond_provider_key_retention")).isTrue();
    assertThat(http.get(gateway.managementPort(), "/metrics", null).body().lines()
        .anyMatch(l -> l.startsWith("idemgate_recovery_actions_total{action=\"unverifiable\"") && !l.endsWith(" 0.0")))
        .as("counted as unverifiable").isTrue();
    forget(key);
  }

  /** Sends the charge of a claim of MERCHANT_A to the provider, as the instance that claimed it did before it died. */
  private static void chargeAtTheAcquirer(String key, long amount) {
    ChargeRequest charge = new ChargeRequest(ProviderKeys.of(MERCHANT_A, key), amount, "EUR", "tok_visa", "pay_x");
    Object outcome = Http.await(gateway.gateway().vertx().eventBus()
        .request(ProviderVerticle.CHARGE, charge, new DeliveryOptions().setCodecName(LocalCodec.NAME))).body();
    assertThat(outcome).isInstanceOf(ProviderOutcome.Succeeded.class);
  }

  /** A retry after its key was freed is a new payment: 201, not a replay, and the acquirer's only charge. */
  private static Reply chargedAnew(String key, JsonObject body) {
    Reply retry = http.pay(gateway.apiPort(), KEY_A, key, body);
    assertThat(retry.status()).isEqualTo(201);
    assertThat(retry.header("Idempotent-Replayed")).isNull();
    assertThat(charges(MERCHANT_A, key)).isEqualTo(1);
    return retry;
  }

  /**
   * After the key's payment {@code releasedId} was released for {@code reason}: GET of that id gives
   * its merchant the payment with status not_charged, and another merchant 404; the retry with the
   * key is a new payment under a new id (and the same provider key, so that the acquirer would
   * dedup a late charge of the released one), and the released id still reads not_charged beside
   * it. Returns the released payment as GET shows it.
   */
  private static JsonObject notChargedThenChargedAnew(String key, JsonObject body, String releasedId, String reason) {
    Reply released = http.get(gateway.apiPort(), "/v1/payments/" + releasedId, KEY_A);
    assertThat(released.status()).as(released.body()).isEqualTo(200);
    JsonObject payment = released.json();
    assertThat(payment.getString("id")).isEqualTo(releasedId);
    assertThat(payment.getString("status")).isEqualTo("not_charged");
    assertThat(payment.getLong("amount")).isEqualTo(body.getLong("amount"));
    assertThat(payment.getString("currency")).isEqualTo(body.getString("currency"));
    assertThat(payment.getString("merchant_reference")).isEqualTo(body.getString("merchant_reference"));
    assertThat(payment.getString("provider")).isEqualTo("simulator");
    assertThat(payment.getString("provider_reference")).isNull();
    assertThat(payment.getString("decline_code")).isNull();
    assertThat(http.get(gateway.apiPort(), "/v1/payments/" + releasedId, TestGateway.KEY_B).status())
        .as("another merchant's GET").isEqualTo(404);
    assertThat(db.scalar("SELECT reason FROM idemgate.released_payments WHERE id = $1", releasedId)).isEqualTo(reason);

    String chargedId = chargedAnew(key, body).json().getString("id");
    assertThat(chargedId).isNotEqualTo(releasedId);
    assertThat(db.scalar("SELECT provider_key FROM idemgate.payments WHERE id = $1", chargedId))
        .isEqualTo(ProviderKeys.of(MERCHANT_A, key));
    assertThat(http.get(gateway.apiPort(), "/v1/payments/" + chargedId, KEY_A).json().getString("status"))
        .isEqualTo("succeeded");
    // The key's one charge: the released payment's request, had it reached the acquirer, would have been answered with it.
    JsonObject after = http.get(gateway.apiPort(), "/v1/payments/" + releasedId, KEY_A).json();
    assertThat(after).isEqualTo(payment.copy().put("status", "succeeded")
        .put("provider_reference", after.getString("provider_reference")).put("charged_as", chargedId));
    assertThat(after.getString("provider_reference")).isNotNull();
    return payment;
  }

  /**
   * A pending payment recovery keeps asking about but cannot release: claimed longer ago than
   * provider_key_retention (the gateway's is the default 24h; this one two days ago).
   */
  private static String forgottenPending(String key, JsonObject body) {
    claim(key, body, "simulator");
    // One statement: a pass between two would see a claim only a minute old, and free its key.
    db.query("UPDATE idemgate.idempotency_keys SET lease_expires_at = now() - interval '1 minute', "
        + "created_at = now() - interval '2 days' WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
    eventually(Duration.ofSeconds(15), () -> "PENDING".equals(state(MERCHANT_A, key)), "recovery marks it pending");
    return paymentId(key);
  }

  /**
   * Makes a claim just made ({@link #claim}) PENDING, in one statement so that no recovery pass
   * sees it in between, with recovery's next look an hour away, so that only an operator's verdict
   * asks the acquirer about it. Claimed a minute ago (past the late-charge window, well within
   * provider_key_retention), or now if {@code justClaimed}.
   */
  private static String quietPending(String key, boolean justClaimed) {
    db.query("UPDATE idemgate.idempotency_keys SET state = 'PENDING', response_status = 202, response_body = '{}', "
        + "expires_at = now() + interval '1 day', next_inquiry_at = now() + interval '1 hour', "
        + "lease_expires_at = now() - interval '1 minute', created_at = now()"
        + (justClaimed ? "" : " - interval '1 minute'") + " WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
    return paymentId(key);
  }

  /** Deletes a record of MERCHANT_A a test left unsettled, so that recovery stops asking about it. */
  private static void forget(String key) {
    db.query("DELETE FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
  }

  private static String paymentId(String key) {
    return (String) db.scalar("SELECT payment_id FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        MERCHANT_A, key);
  }

  /** {@code /admin/pending} with a query, answered 200. */
  private static JsonObject pendingList(TestGateway from, String query) {
    Reply listed = http.get(from.managementPort(), "/admin/pending" + query, TestGateway.ADMIN_TOKEN);
    assertThat(listed.status()).as(listed.body()).isEqualTo(200);
    return listed.json();
  }

  private static Reply settle(String paymentId, String verdict) {
    return settle(gateway, paymentId, verdict);
  }

  private static Reply settle(TestGateway to, String paymentId, String verdict) {
    return http.send(HttpMethod.POST, to.managementPort(), "/admin/pending/" + paymentId + "/resolve",
        Map.of("Authorization", "Bearer " + TestGateway.ADMIN_TOKEN, "Content-Type", "application/json"), Buffer.buffer(verdict));
  }

  @Test
  @DisplayName("an operator settles a pending payment as succeeded from the acquirer's records: its retries replay 201 "
      + "with that charge id, the ledger says succeeded, nothing is charged")
  void operatorSettlesAsSucceeded() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1220, "tok_visa");
    String paymentId = forgottenPending(key, body);

    String charge = "ch_from_dashboard_" + key; // its own: one charge is one payment
    Reply settled = settle(paymentId, "{\"outcome\":\"succeeded\",\"provider_reference\":\"" + charge + "\"}");
    assertThat(settled.status()).as(settled.body()).isEqualTo(200);
    assertThat(settled.json().getString("resolved_as")).isEqualTo("succeeded");
    assertThat(state(MERCHANT_A, key)).isEqualTo("COMPLETED");
    Reply retry = http.pay(gateway.apiPort(), KEY_A, key, body);
    assertThat(retry.status()).isEqualTo(201);
    assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(retry.json().getString("id")).isEqualTo(paymentId);
    assertThat(retry.json().getString("provider_reference")).isEqualTo(charge);
    assertThat(db.scalar("SELECT status FROM idemgate.payments WHERE id = $1", paymentId)).isEqualTo("succeeded");
    assertThat(charges(MERCHANT_A, key)).isZero();
    assertThat(settle(paymentId, "{\"outcome\":\"not_charged\"}").status()).as("no longer pending").isEqualTo(404);
  }

  @Test
  @DisplayName("an operator settles a pending payment as not charged: the key is freed, its payment id answers "
      + "not_charged, a retry is charged as new, once")
  void operatorSettlesAsNotCharged() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1230, "tok_visa");
    String paymentId = forgottenPending(key, body);

    Reply settled = settle(paymentId, "{\"outcome\":\"not_charged\"}");
    assertThat(settled.status()).as(settled.body()).isEqualTo(200);
    assertThat(state(MERCHANT_A, key)).isNull();
    assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE id = $1", paymentId)).isEqualTo(0L);
    notChargedThenChargedAnew(key, body, paymentId, "operator_not_charged");
  }

  @Test
  @DisplayName("past provider_key_retention, a verdict is applied only once the acquirer answered: with no answer "
      + "(no connection here; an open circuit alike) a charge it still remembers could not be looked for, so 502 "
      + "and nothing changed")
  void verdictWithoutAnAnswerChangesNothing() throws Exception {
    String key = Http.newKey();
    try (TestGateway unreachable = withUnreachableAcquirer("verdict-unreachable")) {
      String paymentId = pendingClaimedAgo(key, Http.payment(1236, "tok_visa"), "http verdict-unreachable", Duration.ofDays(2));

      Reply refused = settle(unreachable, paymentId, "{\"outcome\":\"not_charged\"}");
      assertThat(refused.status()).as(refused.body()).isEqualTo(502);
      assertThat(refused.json().getString("detail")).contains("gave no answer").contains("\"without_acquirer\": true");
      assertThat(state(MERCHANT_A, key)).isEqualTo("PENDING");
      assertThat(db.scalar("SELECT count(*) FROM idemgate.released_payments WHERE id = $1", paymentId)).isEqualTo(0L);
    } finally {
      forget(key);
    }
  }

  /**
   * A gateway whose acquirer (provider {@code http <name>}) is a port nothing listens on, so every
   * inquiry gets no answer at all; its recovery passes are an hour apart, out of the tests' way.
   */
  private static TestGateway withUnreachableAcquirer(String name) {
    // Below the ephemeral range (TestGateway.freePort): a port the kernel just handed out and took back
    // can be handed to another socket, or to the gateway's own connect to it (a self-connection).
    int closedPort = TestGateway.freePort();
    return TestGateway.start(Map.of("IDEMGATE_PROVIDER", "http", "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:" + closedPort,
        "IDEMGATE_PROVIDER_NAME", name, "IDEMGATE_LEASE", "3s", "IDEMGATE_PROVIDER_TIMEOUT", "3s",
        "IDEMGATE_RECOVERY_INTERVAL", "1h"));
  }

  /** A PENDING record of MERCHANT_A claimed {@code claimedAgo} by {@code providerId}, its next inquiry an hour away. */
  private static String pendingClaimedAgo(String key, JsonObject body, String providerId, Duration claimedAgo) {
    String paymentId = claim(key, body, providerId);
    db.query("UPDATE idemgate.idempotency_keys SET state = 'PENDING', response_status = 202, response_body = '{}', "
        + "expires_at = now() + interval '1 day', next_inquiry_at = now() + interval '1 hour', "
        + "lease_expires_at = now() - $3 * interval '1 millisecond', created_at = now() - $3 * interval '1 millisecond' "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key, claimedAgo.toMillis());
    return paymentId;
  }

  @Test
  @DisplayName("with an acquirer that gives no answer at all, a verdict saying without_acquirer is applied past "
      + "provider_key_retention (acquirer_answered false), and still refused (502) while the acquirer remembers the payment")
  void verdictWithoutTheAcquirer() throws Exception {
    String old = Http.newKey();
    String charged = Http.newKey();
    String young = Http.newKey();
    try (TestGateway unreachable = withUnreachableAcquirer("verdict-gone")) {
      String provider = "http verdict-gone";
      String oldId = pendingClaimedAgo(old, Http.payment(1237, "tok_visa"), provider, Duration.ofDays(2));
      String chargedId = pendingClaimedAgo(charged, Http.payment(1238, "tok_visa"), provider, Duration.ofDays(2));
      String youngId = pendingClaimedAgo(young, Http.payment(1239, "tok_visa"), provider, Duration.ofHours(2));

      Reply released = settle(unreachable, oldId, "{\"outcome\":\"not_charged\",\"without_acquirer\":true}");
      assertThat(released.status()).as(released.body()).isEqualTo(200);
      assertThat(released.json().getString("resolved_as")).isEqualTo("not_charged");
      assertThat(released.json().getBoolean("acquirer_answered")).isFalse();
      assertThat(state(MERCHANT_A, old)).isNull();
      assertThat(db.scalar("SELECT reason FROM idemgate.released_payments WHERE id = $1", oldId)).isEqualTo("operator_not_charged");

      String charge = "ch_from_settlement_file_" + charged;
      Reply completed = settle(unreachable, chargedId, "{\"outcome\":\"succeeded\",\"provider_reference\":\"" + charge
          + "\",\"without_acquirer\":true}");
      assertThat(completed.status()).as(completed.body()).isEqualTo(200);
      assertThat(completed.json().getBoolean("acquirer_answered")).isFalse();
      assertThat(completed.json().getBoolean("verdict_overridden")).isFalse();
      assertThat(state(MERCHANT_A, charged)).isEqualTo("COMPLETED");
      assertThat(db.scalar("SELECT provider_reference FROM idemgate.payments WHERE id = $1", chargedId)).isEqualTo(charge);

      Reply tooYoung = settle(unreachable, youngId, "{\"outcome\":\"not_charged\",\"without_acquirer\":true}");
      assertThat(tooYoung.status()).as(tooYoung.body()).isEqualTo(502);
      assertThat(tooYoung.json().getString("detail")).contains("older than provider_key_retention");
      assertThat(state(MERCHANT_A, young)).isEqualTo("PENDING");
      assertThat(db.scalar("SELECT count(*) FROM idemgate.released_payments WHERE id = $1", youngId)).isEqualTo(0L);
    } finally {
      forget(old);
      forget(charged);
      forget(young);
    }
  }

  @Test
  @DisplayName("past provider_key_retention, not_charged is refused (409) while the acquirer reports it has the "
      + "payment's request (its charge still processing), and recovery later records the charge it makes")
  void notChargedRefusedWhileTheAcquirerHasTheRequest() {
    String key = Http.newKey();
    String paymentId = forgottenPending(key, Http.payment(1239, "tok_visa"));
    // The dead instance's charge reaches the acquirer only now and takes 2.5 s to decide (tok_slow).
    ChargeRequest slow = new ChargeRequest(ProviderKeys.of(MERCHANT_A, key), 1239, "EUR", "tok_slow", paymentId);
    gateway.gateway().vertx().eventBus().request(ProviderVerticle.CHARGE, slow,
        new DeliveryOptions().setCodecName(LocalCodec.NAME).setSendTimeout(10_000));
    eventually(Duration.ofSeconds(2), () -> http.get(gateway.managementPort(), "/admin/simulator/charges?idempotency_key="
        + ProviderKeys.of(MERCHANT_A, key), TestGateway.ADMIN_TOKEN).json().getInteger("requests", 0) > 0,
        "the acquirer has the request");

    Reply refused = settle(paymentId, "{\"outcome\":\"not_charged\"}");
    assertThat(refused.status()).as(refused.body()).isEqualTo(409);
    assertThat(refused.json().getString("detail")).contains("may be charged");
    assertThat(db.scalar("SELECT count(*) FROM idemgate.released_payments WHERE id = $1", paymentId)).isEqualTo(0L);
    eventually(Duration.ofSeconds(15), () -> "COMPLETED".equals(state(MERCHANT_A, key)),
        "recovery, given the record back, records the charge once the acquirer made it");
    assertThat(db.scalar("SELECT status FROM idemgate.payments WHERE id = $1", paymentId)).isEqualTo("succeeded");
  }

  @Test
  @DisplayName("a succeeded verdict naming a charge id another payment already has is refused (409): one charge is one "
      + "payment")
  void verdictWithAnotherPaymentsCharge() {
    Reply paid = http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(1237, "tok_visa"));
    assertThat(paid.status()).isEqualTo(201);
    String taken = paid.json().getString("provider_reference");
    String key = Http.newKey();
    String paymentId = forgottenPending(key, Http.payment(1238, "tok_visa"));

    Reply refused = settle(paymentId, "{\"outcome\":\"succeeded\",\"provider_reference\":\"" + taken + "\"}");
    assertThat(refused.status()).as(refused.body()).isEqualTo(409);
    assertThat(refused.json().getString("detail")).contains(paid.json().getString("id"));
    assertThat(state(MERCHANT_A, key)).isEqualTo("PENDING");
    assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE provider_reference = $1", taken)).isEqualTo(1L);

    // Another acquirer's charge may have the same id: it is not this one's.
    String othersCharge = "ch_other_" + key;
    db.query("INSERT INTO idemgate.payments (id, merchant_id, provider_key, amount, currency, status, provider, "
        + "provider_reference, created_at) VALUES ($1, $2, $3, 500, 'EUR', 'succeeded', 'another-acquirer', $4, now())",
        PaymentJson.newPaymentId(Instant.now()), MERCHANT_A, "pk_other_" + key, othersCharge);
    Reply settled = settle(paymentId, "{\"outcome\":\"succeeded\",\"provider_reference\":\"" + othersCharge + "\"}");
    assertThat(settled.status()).as(settled.body()).isEqualTo(200);
    assertThat(state(MERCHANT_A, key)).isEqualTo("COMPLETED");
  }

  @Test
  @DisplayName("an operator's not_charged for a payment the acquirer did charge is overridden: the acquirer is asked "
      + "once more, and the payment is recorded as it answers; the key is never freed")
  void operatorVerdictAgainstTheAcquirer() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1235, "tok_visa");
    claim(key, body, "simulator");
    chargeAtTheAcquirer(key, 1235);
    String paymentId = quietPending(key, false);

    Reply overridden = settle(paymentId, "{\"outcome\":\"not_charged\"}");
    assertThat(overridden.status()).as(overridden.body()).isEqualTo(200);
    assertThat(overridden.json().getString("resolved_as")).isEqualTo("succeeded");
    assertThat(overridden.json().getBoolean("verdict_overridden")).isTrue();
    assertThat(overridden.json().getString("provider_key")).as("the key to look the payment up by at the acquirer")
        .isEqualTo(ProviderKeys.of(MERCHANT_A, key));
    assertThat(state(MERCHANT_A, key)).isEqualTo("COMPLETED");
    Reply retry = http.pay(gateway.apiPort(), KEY_A, key, body);
    assertThat(retry.status()).isEqualTo(201);
    assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(charges(MERCHANT_A, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("/admin/pending names each payment's provider_key, the key the acquirer knows it by: looked up there, "
      + "it finds the charge; key_sha256, the client's key alone, is no key the acquirer knows")
  void pendingListNamesTheProviderKey() {
    String key = Http.newKey();
    claim(key, Http.payment(1237, "tok_visa"), "simulator");
    chargeAtTheAcquirer(key, 1237);
    String paymentId = quietPending(key, false);
    try {
      JsonObject entry = pendingList(gateway, "?payment_id=" + paymentId).getJsonArray("unresolved").getJsonObject(0);
      assertThat(entry.getString("provider_key")).as(entry.encode())
          .isEqualTo(db.scalar("SELECT provider_key FROM idemgate.idempotency_keys WHERE payment_id = $1", paymentId));
      JsonObject atTheAcquirer = http.get(gateway.managementPort(), "/admin/simulator/charges?idempotency_key="
          + entry.getString("provider_key"), TestGateway.ADMIN_TOKEN).json();
      assertThat(atTheAcquirer.getJsonArray("charges")).as("the acquirer's record of the charge").hasSize(1);
      assertThat(entry.getString("key_sha256")).isEqualTo(dev.idemgate.idempotency.Fingerprint.sha256Hex(key));
      assertThat(http.get(gateway.managementPort(), "/admin/simulator/charges?idempotency_key="
          + entry.getString("key_sha256"), TestGateway.ADMIN_TOKEN).json().getInteger("requests")).isZero();
    } finally {
      forget(key);
    }
  }

  @Test
  @DisplayName("while the acquirer still remembers a payment, a verdict it contradicts changes nothing: succeeded or "
      + "declined for a payment it never saw get 409, the record stays pending, and recovery gets it back at once")
  void verdictAgainstAnAcquirerThatRemembers() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1245, "tok_visa");
    claim(key, body, "simulator");
    String paymentId = quietPending(key, false);

    Reply succeeded = settle(paymentId, "{\"outcome\":\"succeeded\",\"provider_reference\":\"ch_made_up\"}");
    assertThat(succeeded.status()).as(succeeded.body()).isEqualTo(409);
    assertThat(succeeded.json().getString("detail")).contains("never saw");
    assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE id = $1 AND status <> 'pending'", paymentId))
        .isEqualTo(0L);
    // The refused verdict gave the record back: recovery asks at once, hears "never seen" too, and
    // frees the key, instead of waiting out the verdict's budget (24 s with these settings).
    eventually(Duration.ofSeconds(5), () -> state(MERCHANT_A, key) == null, "recovery releases the record");
    assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE id = $1 AND status <> 'pending'", paymentId))
        .isEqualTo(0L);
    chargedAnew(key, body);
  }

  @Test
  @DisplayName("a verdict the acquirer contradicts on a second payment: declined for a payment it never saw gets 409 too")
  void declinedVerdictAgainstAnAcquirerThatRemembers() {
    String key = Http.newKey();
    claim(key, Http.payment(1246, "tok_visa"), "simulator");
    String paymentId = quietPending(key, false);

    assertThat(settle(paymentId, "{\"outcome\":\"declined\"}").status()).isEqualTo(409);
    assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE id = $1 AND status <> 'pending'", paymentId))
        .isEqualTo(0L);
    eventually(Duration.ofSeconds(5), () -> state(MERCHANT_A, key) == null, "recovery releases the record");
  }

  @Test
  @DisplayName("an operator settles a claim whose lease ran out that recovery has not taken (its passes an hour "
      + "apart here), as /admin/pending lists it; one whose lease ended less than takeover_grace ago gets 409, "
      + "since its owner may still have a charge on the way")
  void operatorSettlesAnExpiredClaim() {
    AcquirerServer acquirer = new AcquirerServer(0, 0, 0, false);
    String deployment = Http.await(http.vertx().deployVerticle(acquirer));
    // A provider of its own, so that the suite's gateway, whose recovery runs every 200 ms, leaves its records alone.
    String providerId = "http operator-test";
    String expired = Http.newKey();
    String recent = Http.newKey();
    try (TestGateway slow = TestGateway.start(Map.of("IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:" + acquirer.actualPort(), "IDEMGATE_PROVIDER_NAME", "operator-test",
        "IDEMGATE_LEASE", "3s", "IDEMGATE_PROVIDER_TIMEOUT", "3s", "IDEMGATE_RECOVERY_INTERVAL", "1h"))) {
      abandonedClaim(expired, Http.payment(1247, "tok_visa"), providerId);
      claim(recent, Http.payment(1248, "tok_visa"), providerId);
      // Claimed a minute ago, but its lease (counted by PostgreSQL) ended only a second ago.
      db.query("UPDATE idemgate.idempotency_keys SET created_at = now() - interval '1 minute', "
          + "lease_expires_at = now() - interval '1 second' WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, recent);
      String expiredId = paymentId(expired);
      String recentId = paymentId(recent);
      assertThat(pendingList(slow, "?payment_id=" + expiredId).encode()).contains(expiredId);
      assertThat(pendingList(slow, "?payment_id=" + recentId).encode()).contains(recentId);

      Reply early = settle(slow, recentId, "{\"outcome\":\"not_charged\"}");
      assertThat(early.status()).as(early.body()).isEqualTo(409);
      assertThat(early.json().getString("detail")).contains("still being worked on");
      assertThat(state(MERCHANT_A, recent)).isEqualTo("PROCESSING");

      Reply settled = settle(slow, expiredId, "{\"outcome\":\"not_charged\"}");
      assertThat(settled.status()).as(settled.body()).isEqualTo(200);
      assertThat(settled.json().getString("resolved_as")).isEqualTo("not_charged");
      assertThat(state(MERCHANT_A, expired)).isNull();
      // No ledger row: the payment is kept as released from the record.
      Reply released = http.get(slow.apiPort(), "/v1/payments/" + expiredId, KEY_A);
      assertThat(released.status()).as(released.body()).isEqualTo(200);
      assertThat(released.json().getString("status")).isEqualTo("not_charged");
      assertThat(db.scalar("SELECT reason FROM idemgate.released_payments WHERE id = $1", expiredId))
          .isEqualTo("operator_not_charged");
    } finally {
      for (String key : new String[] {expired, recent}) {
        forget(key);
      }
      Http.await(http.vertx().undeploy(deployment));
    }
  }

  @Test
  @DisplayName("an operator cannot free a pending payment while a late charge could still reach the acquirer (409), "
      + "nor settle an unknown id (404), nor send a verdict that is not one (400) or not declared as UTF-8 JSON (415)")
  void operatorVerdictsThatAreRefused() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1240, "tok_visa");
    claim(key, body, "simulator");
    String paymentId = quietPending(key, true);

    Object epoch = db.scalar("SELECT epoch FROM idemgate.idempotency_keys WHERE payment_id = $1", paymentId);
    Reply early = settle(paymentId, "{\"outcome\":\"not_charged\"}");
    assertThat(early.status()).isEqualTo(409);
    assertThat(early.json().getString("code")).isEqualTo("conflict");
    assertThat(state(MERCHANT_A, key)).isEqualTo("PENDING");
    assertThat(db.scalar("SELECT epoch FROM idemgate.idempotency_keys WHERE payment_id = $1", paymentId))
        .as("a refused verdict takes nothing over").isEqualTo(epoch);
    assertThat(settle("pay_" + "0".repeat(32), "{\"outcome\":\"not_charged\"}").status()).isEqualTo(404);
    assertThat(settle("nonsense", "{\"outcome\":\"not_charged\"}").status()).isEqualTo(404);
    assertThat(settle(paymentId, "{\"outcome\":\"succeeded\"}").status()).as("no charge id").isEqualTo(400);
    assertThat(settle(paymentId, "{\"outcome\":\"refunded\"}").status()).isEqualTo(400);
    assertThat(http.send(HttpMethod.POST, gateway.managementPort(), "/admin/pending/" + paymentId + "/resolve",
        Map.of(), Buffer.buffer("{\"outcome\":\"not_charged\"}")).status()).as("admin token needed").isEqualTo(401);
    String admin = "Bearer " + TestGateway.ADMIN_TOKEN;
    for (Map<String, String> headers : List.of(Map.of("Authorization", admin),
        Map.of("Authorization", admin, "Content-Type", "text/plain"),
        Map.of("Authorization", admin, "Content-Type", "application/json; charset=iso-8859-1"),
        Map.of("Authorization", admin, "Content-Type", "application/json", "Content-Encoding", "gzip"))) {
      Reply unreadable = http.send(HttpMethod.POST, gateway.managementPort(), "/admin/pending/" + paymentId + "/resolve",
          headers, Buffer.buffer("{\"outcome\":\"not_charged\"}"));
      assertThat(unreadable.status()).as(headers.toString()).isEqualTo(415);
      assertThat(unreadable.json().getString("code")).isEqualTo("unsupported_media_type");
    }
    assertThat(state(MERCHANT_A, key)).isEqualTo("PENDING");
    forget(key);
  }

  @Test
  @DisplayName("a pending marker left in Redis after recovery released the key does not hold the key: "
      + "a different payload with it is charged as new, not refused 422")
  void stalePendingMarkerDoesNotForbid() {
    String key = Http.newKey();
    JsonObject abandoned = Http.payment(1250, "tok_visa");
    abandonedClaim(key, abandoned);
    eventually(Duration.ofSeconds(15), () -> state(MERCHANT_A, key) == null, "recovery releases the record");
    // A retry that read PENDING in PostgreSQL just before the release marks the key pending in
    // Redis just after recovery deleted it (the same is left when that delete fails).
    Redis redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
    try {
      Http.await(redis.send(Request.cmd(Command.SET).arg(RedisGate.redisKey(MERCHANT_A, new IdempotencyKey(key)))
          .arg("N|" + PaymentService.fingerprint(abandoned)).arg("PX").arg(600_000)));
    } finally {
      Http.await(redis.close());
    }

    Reply other = http.pay(gateway.apiPort(), KEY_A, key, Http.payment(1251, "tok_visa"));
    assertThat(other.status()).as(other.body()).isEqualTo(201);
    assertThat(other.header("Idempotent-Replayed")).isNull();
    assertThat(other.json().getInteger("amount")).isEqualTo(1251);
    assertThat(charges(MERCHANT_A, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("recovery leaves alone a record claimed for another provider: it cannot know that provider's answer")
  void otherProvidersRecordsAreLeftAlone() throws Exception {
    String key = Http.newKey();
    abandonedClaim(key, Http.payment(1260, "tok_visa"), "http http://another-acquirer.example:8181");
    Thread.sleep(2_000); // ten recovery passes
    assertThat(state(MERCHANT_A, key)).isEqualTo("PROCESSING");
    assertThat(db.scalar("SELECT epoch FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        MERCHANT_A, key)).isEqualTo(1);
    forget(key);
  }

  @Test
  @DisplayName("with provider_name set, recovery takes the records claimed under that name and, from before it was "
      + "set, under the URL (relabelling them with the name), but not another provider's; new claims and their "
      + "ledger rows carry the name")
  void providerNameKeepsRecoveryAcrossUrlChanges() {
    AcquirerServer acquirer = new AcquirerServer(0, 0, 0, false);
    String deployment = Http.await(http.vertx().deployVerticle(acquirer));
    String url = "http://127.0.0.1:" + acquirer.actualPort();
    String byName = Http.newKey();
    String byUrl = Http.newKey();
    String other = Http.newKey();
    String fresh = Http.newKey();
    String young = Http.newKey();
    try (TestGateway named = TestGateway.start(Map.of("IDEMGATE_PROVIDER", "http", "IDEMGATE_PROVIDER_URL", url,
        "IDEMGATE_PROVIDER_NAME", "acme-acquirer", "IDEMGATE_LEASE", "3s", "IDEMGATE_PROVIDER_TIMEOUT", "3s",
        "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_RECOVERY_BACKOFF", "5s,300ms,600ms"))) {
      abandonedClaim(byName, Http.payment(1270, "tok_visa"), "http acme-acquirer");
      abandonedClaim(byUrl, Http.payment(1271, "tok_visa"), "http " + url);
      abandonedClaim(other, Http.payment(1272, "tok_visa"), "http http://another-acquirer.example:8181");
      // Pending and just sent, as far as anyone can tell: recovery keeps asking, and relabels it.
      abandonedClaim(young, Http.payment(1274, "tok_visa"), "http " + url);
      db.query("UPDATE idemgate.idempotency_keys SET state = 'PENDING', response_status = 202, response_body = '{}', "
          + "expires_at = now() + interval '1 day', next_inquiry_at = now(), created_at = now(), lease_expires_at = now() "
          + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, young);

      eventually(Duration.ofSeconds(15), () -> state(MERCHANT_A, byName) == null && state(MERCHANT_A, byUrl) == null,
          "recovery asks the acquirer about both records, which it never saw, and releases them");
      assertThat(state(MERCHANT_A, other)).isEqualTo("PROCESSING");
      assertThat(db.scalar("SELECT epoch FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
          MERCHANT_A, other)).as("never taken").isEqualTo(1);
      eventually(Duration.ofSeconds(10), () -> "http acme-acquirer".equals(db.scalar("SELECT provider_id FROM "
          + "idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, young)),
          "a record recovery took under the URL now carries the name");
      assertThat(state(MERCHANT_A, young)).isEqualTo("PENDING");

      Http.Reply paid = http.pay(named.apiPort(), KEY_A, fresh, Http.payment(1273, "tok_visa"));
      assertThat(paid.status()).isEqualTo(201);
      // The ledger names the acquirer, so that reconcile --provider acme-acquirer finds its payments.
      assertThat(paid.json().getString("provider")).isEqualTo("acme-acquirer");
      assertThat(db.scalar("SELECT provider FROM idemgate.payments WHERE id = $1", paid.json().getString("id")))
          .isEqualTo("acme-acquirer");
      assertThat(db.scalar("SELECT provider_id FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
          MERCHANT_A, fresh)).isEqualTo("http acme-acquirer");
    } finally {
      for (String key : new String[] {byName, byUrl, other, fresh, young}) {
        forget(key);
      }
      Http.await(http.vertx().undeploy(deployment));
    }
  }

  @Test
  @DisplayName("a pending payment the provider cannot explain yet stays PENDING, with its retries counted, visible at /admin/pending and in metrics")
  void unexplainedStaysPending() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1250, "tok_visa");
    // A fresh claim, whose lease keeps recovery away until the statement below: an abandoned one
    // (lease run out) could be taken and released between the two statements.
    claim(key, body, "simulator");
    // Just sent, as far as anyone can tell: a late charge could still land, so it must not be released.
    db.query("UPDATE idemgate.idempotency_keys SET state = 'PENDING', response_status = 202, response_body = '{}', "
        + "expires_at = now() + interval '1 day', next_inquiry_at = now(), created_at = now(), lease_expires_at = now() "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);

    eventually(Duration.ofSeconds(10), () -> ((Integer) db.scalar("SELECT inquiry_attempts FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key)) >= 2, "recovery asks more than once");
    assertThat(state(MERCHANT_A, key)).isEqualTo("PENDING");
    String keyHash = dev.idemgate.idempotency.Fingerprint.sha256Hex(key);
    // Narrowed to this payment: this machine's database may hold older unresolved records of other runs.
    Reply admin = http.get(gateway.managementPort(), "/admin/pending?payment_id=" + paymentId(key), TestGateway.ADMIN_TOKEN);
    assertThat(admin.status()).isEqualTo(200);
    assertThat(admin.body()).contains(keyHash).doesNotContain(key);
    eventually(Duration.ofSeconds(5), () -> http.get(gateway.managementPort(), "/metrics", null).body().lines()
        .anyMatch(l -> l.startsWith("idemgate_recovery_pending ") && !l.endsWith(" 0.0")), "the pending gauge counts it");
    forget(key);
  }

  @Test
  @DisplayName("/admin/pending narrows by merchant and payment, lists at most its limit and says when more match; "
      + "a bad limit, an empty filter, a parameter it does not take or one given twice is 400")
  void pendingListNarrowsAndSaysWhenThereIsMore() {
    String first = Http.newKey();
    String second = Http.newKey();
    for (String key : List.of(first, second)) {
      abandonedClaim(key, Http.payment(1260, "tok_visa"));
      // Pending, just sent and not due for an inquiry: recovery leaves both alone while the test reads.
      db.query("UPDATE idemgate.idempotency_keys SET state = 'PENDING', response_status = 202, response_body = '{}', "
          + "expires_at = now() + interval '1 day', next_inquiry_at = now() + interval '1 hour', created_at = now() "
          + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
    }
    try {
      JsonObject one = pendingList(gateway, "?payment_id=" + paymentId(first));
      assertThat(one.getJsonArray("unresolved")).hasSize(1);
      assertThat(one.getJsonArray("unresolved").getJsonObject(0).getString("payment_id")).isEqualTo(paymentId(first));
      assertThat(one.getBoolean("more")).isFalse();

      JsonObject cut = pendingList(gateway, "?merchant_id=" + MERCHANT_A + "&limit=1");
      assertThat(cut.getJsonArray("unresolved")).hasSize(1);
      assertThat(cut.getJsonArray("unresolved").getJsonObject(0).getString("merchant_id")).isEqualTo(MERCHANT_A);
      assertThat(cut.getBoolean("more")).as("both records match, one is listed").isTrue();

      JsonObject none = pendingList(gateway, "?merchant_id=no-such-merchant&payment_id=" + paymentId(first));
      assertThat(none.getJsonArray("unresolved")).isEmpty();
      assertThat(none.getBoolean("more")).isFalse();

      // ?merchant= is no filter of this list (merchant_id is): it was ignored, and both records listed.
      for (String bad : List.of("?limit=0", "?limit=1001", "?limit=ten", "?merchant_id=", "?payment_id=a%20b",
          "?merchant=" + MERCHANT_A, "?limt=1", "?merchant_id=" + MERCHANT_A + "&merchant_id=" + TestGateway.MERCHANT_B)) {
        Reply refused = http.get(gateway.managementPort(), "/admin/pending" + bad, TestGateway.ADMIN_TOKEN);
        assertThat(refused.status()).as(bad).isEqualTo(400);
        assertThat(refused.json().getString("code")).as(bad).isEqualTo("invalid_request");
      }
    } finally {
      forget(first);
      forget(second);
    }
  }

  @Test
  @DisplayName("/admin/pending lists a claim whose lease ran out while recovery or an operator's verdict holds it "
      + "(its lease pushed past the inquiry), marked with the hold's end; a claim still within its owner's lease is not listed")
  void heldClaimStaysListed() {
    // A provider of its own, so that the suite's gateway leaves the records alone: the test takes one itself.
    String providerId = "held-by-test";
    String held = Http.newKey();
    String inFlight = Http.newKey();
    try {
      String heldId = abandonedClaim(held, Http.payment(1265, "tok_visa"), providerId);
      String inFlightId = claim(inFlight, Http.payment(1266, "tok_visa"), providerId);
      RecoveryStore recovery = new RecoveryStore(db.pool(), Duration.ofSeconds(5), List.of(providerId), Duration.ofDays(1),
          List.of("simulator"));
      // Taken as an operator's verdict (or a recovery pass) takes it, held for a minute while the acquirer is asked.
      assertThat(Http.await(recovery.takePending(heldId, Duration.ZERO, Duration.ofMinutes(1), Duration.ZERO)))
          .isNotNull();

      JsonObject listed = pendingList(gateway, "?payment_id=" + heldId);
      assertThat(listed.getJsonArray("unresolved")).as(listed.encode()).hasSize(1);
      JsonObject entry = listed.getJsonArray("unresolved").getJsonObject(0);
      assertThat(entry.getString("state")).isEqualTo("PROCESSING");
      assertThat(Instant.parse(entry.getString("held_until"))).as(entry.encode()).isAfter(Instant.now());
      assertThat(pendingList(gateway, "?payment_id=" + inFlightId).getJsonArray("unresolved"))
          .as("a claim its owner still works on").isEmpty();
    } finally {
      forget(held);
      forget(inFlight);
    }
  }

  @Test
  @DisplayName("an owner that wakes up after recovery took its record over is fenced: its completion changes nothing")
  void lateOwnerIsFenced() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1300, "tok_visa");
    abandonedClaim(key, body);
    eventually(Duration.ofSeconds(15), () -> state(MERCHANT_A, key) == null, "recovery releases the record");

    // The old owner held epoch 1; whatever it writes now must not land.
    IdempotencyStore store = new IdempotencyStore(db.pool(), http.vertx().getOrCreateContext(), 2, Duration.ofSeconds(5), Duration.ofSeconds(3),
        "simulator");
    Http.Reply fresh = http.pay(gateway.apiPort(), KEY_A, key, body);
    assertThat(fresh.status()).isEqualTo(201);
    int epoch = (Integer) db.scalar("SELECT epoch FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        MERCHANT_A, key);
    var stale = new dev.idemgate.idempotency.Completion(dev.idemgate.idempotency.RecordState.COMPLETED,
        new dev.idemgate.idempotency.StoredResponse(402, "{}", "pay_stale", Instant.now().plusSeconds(60)),
        Duration.ofSeconds(60), "declined", "simulator", "ch_stale", "card_declined", null, null);
    assertThat(Http.await(store.complete(MERCHANT_A, new IdempotencyKey(key), epoch + 1, stale)))
        .isEqualTo(dev.idemgate.idempotency.Completion.Result.FENCED);
    String paymentId = (String) db.scalar("SELECT payment_id FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", MERCHANT_A, key);
    assertThat(Http.await(store.release(MERCHANT_A, new IdempotencyKey(key), epoch + 1, paymentId)))
        .isEqualTo(dev.idemgate.idempotency.Completion.Result.FENCED);
    assertThat(http.pay(gateway.apiPort(), KEY_A, key, body).body()).isEqualTo(fresh.body());
  }

  @Test
  @DisplayName("Prefer: wait=N makes a twin wait for the in-flight request and replay its outcome instead of 409")
  void preferWaitReplaysTheTwin() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1400, "tok_slow");
    var first = http.payAsync(gateway.apiPort(), KEY_A, key, body.encode(), Map.of());
    eventually(Duration.ofSeconds(5), () -> "PROCESSING".equals(state(MERCHANT_A, key)), "the first request is in flight");
    Instant before = Instant.now();
    Reply waited = Http.await(http.payAsync(gateway.apiPort(), KEY_A, key, body.encode(), Map.of("Prefer", "wait=5")));
    Reply original = Http.await(first);

    assertThat(original.status()).isEqualTo(201);
    assertThat(waited.status()).isEqualTo(201);
    assertThat(waited.body()).isEqualTo(original.body());
    assertThat(waited.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(Duration.between(before, Instant.now())).isLessThan(Duration.ofSeconds(5));
    assertThat(charges(MERCHANT_A, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("Prefer: wait=N ends when the twin's key is released (nothing charged), not at N: the waiter then makes its own attempt")
  void preferWaitWakesOnRelease() {
    TestGateway slow = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_LATENCY_MS", "1500"));
    try {
      String key = Http.newKey();
      JsonObject body = Http.payment(1450, "tok_provider_down");
      var first = http.payAsync(slow.apiPort(), KEY_A, key, body.encode(), Map.of());
      eventually(Duration.ofSeconds(5), () -> "PROCESSING".equals(state(MERCHANT_A, key)), "the first request is in flight");
      Instant before = Instant.now();
      Reply waited = Http.await(http.payAsync(slow.apiPort(), KEY_A, key, body.encode(), Map.of("Prefer", "wait=10")));
      assertThat(Http.await(first).status()).isEqualTo(502);
      // Woken by the release at about 1.5 s, it claims the key and is refused in turn after 1.5 s more.
      assertThat(waited.status()).isEqualTo(502);
      assertThat(Duration.between(before, Instant.now())).as("well before the 10 s wait is up").isLessThan(Duration.ofSeconds(8));
    } finally {
      slow.close();
    }
  }

  @Test
  @DisplayName("Prefer: wait shorter than the twin's run ends in 409 when the wait runs out")
  void preferWaitRunsOut() {
    // A charge of 5 s, not the shared gateway's 2.5 s: the 1 s wait must start well before it ends,
    // however long a loaded machine takes to see the claim and send the retry.
    try (TestGateway slow = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_SLOW_MS", "5000"))) {
      String key = Http.newKey();
      JsonObject body = Http.payment(1500, "tok_slow");
      var first = http.payAsync(slow.apiPort(), KEY_A, key, body.encode(), Map.of());
      eventually(Duration.ofSeconds(5), () -> "PROCESSING".equals(state(MERCHANT_A, key)), "the first request is in flight");
      Reply waited = Http.await(http.payAsync(slow.apiPort(), KEY_A, key, body.encode(), Map.of("Prefer", "wait=1")));
      assertThat(waited.status()).isEqualTo(409);
      assertThat(Http.await(first).status()).isEqualTo(201);
    }
  }

  @Test
  @DisplayName("a completed key is replayed for its merchant's TTL, then purged, and then behaves as new")
  void retentionExpiresKeys() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1600, "tok_visa");
    Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_B, key, body);
    assertThat(first.status()).isEqualTo(201);
    assertThat(Duration.between(Instant.now(), java.time.ZonedDateTime.parse(first.header("Idempotency-Key-Expires"),
        java.time.format.DateTimeFormatter.RFC_1123_DATE_TIME).toInstant())).isLessThan(Duration.ofSeconds(3));

    eventually(Duration.ofSeconds(15), () -> state(TestGateway.MERCHANT_B, key) == null, "the purge deletes the expired key");
    Reply again = http.pay(gateway.apiPort(), TestGateway.KEY_B, key, body);
    assertThat(again.status()).isEqualTo(201);
    assertThat(again.header("Idempotent-Replayed")).isNull();
    assertThat(again.json().getString("id")).isNotEqualTo(first.json().getString("id"));
    // The ledger keeps both payments: retention only forgets keys.
    assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE id IN ($1, $2)",
        first.json().getString("id"), again.json().getString("id"))).isEqualTo(2L);
  }

  @Test
  @DisplayName("an expired key used again before the purge is re-claimed under a new provider key and charged as new")
  void expiredKeyReclaimedBeforePurge() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1700, "tok_visa");
    Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_B, key, body);
    db.query("UPDATE idemgate.idempotency_keys SET expires_at = now() - interval '1 second' "
        + "WHERE merchant_id = $1 AND idempotency_key = $2", TestGateway.MERCHANT_B, key);
    db.query("SELECT 1"); // the Redis copy also expires on its own TTL (2 s)
    sleep(2100);
    Reply again = http.pay(gateway.apiPort(), TestGateway.KEY_B, key, body);
    assertThat(again.status()).isEqualTo(201);
    assertThat(again.json().getString("id")).isNotEqualTo(first.json().getString("id"));
    assertThat(again.json().getString("provider_reference")).isNotEqualTo(first.json().getString("provider_reference"));
    assertThat(db.scalar("SELECT provider_key FROM idemgate.payments WHERE id = $1", again.json().getString("id")))
        .isEqualTo(ProviderKeys.reused(TestGateway.MERCHANT_B, key, again.json().getString("id")));
  }

}
