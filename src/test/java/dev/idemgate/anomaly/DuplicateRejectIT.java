package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.payment.PaymentRequest;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.json.JsonObject;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** IDEMGATE_DUPLICATE_PAYLOAD_POLICY=reject through a gateway: refused twins are never charged. */
class DuplicateRejectIT {
  private static TestGateway gateway;
  private static Http http;
  private static Redis redis;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "reject"));
    http = new Http();
    redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
  }

  @AfterAll
  static void stop() {
    Http.await(redis.close());
    http.close();
    gateway.close();
  }

  private static Reply pay(String key, JsonObject body, Map<String, String> headers) {
    return pay(gateway, key, body.encode(), headers);
  }

  private static Reply pay(TestGateway to, String key, String body, Map<String, String> headers) {
    return Http.await(http.payAsync(to.apiPort(), TestGateway.KEY_A, key, body, headers));
  }

  private static int charges(String key) {
    return charges(gateway, key);
  }

  private static int charges(TestGateway at, String key) {
    Reply log = http.get(at.managementPort(), "/admin/simulator/charges?merchant=" + TestGateway.MERCHANT_A
        + "&key=" + key, TestGateway.ADMIN_TOKEN);
    assertThat(log.status()).isEqualTo(200);
    return log.json().getJsonArray("charges").size();
  }

  @Test
  @DisplayName("a twin under a new key gets 409 duplicate_payment_suspected naming the original, and is never charged")
  void twinIsRefused() {
    JsonObject body = Orders.payment(2500, "tok_visa");
    String k1 = Http.newKey();
    String k2 = Http.newKey();
    Reply original = pay(k1, body, Map.of());
    assertThat(original.status()).isEqualTo(201);

    Reply twin = pay(k2, body, Map.of());
    assertThat(twin.status()).isEqualTo(409);
    assertThat(twin.header("Content-Type")).isEqualTo("application/problem+json");
    assertThat(twin.header("Idempotency-Key")).isEqualTo(k2);
    JsonObject problem = twin.json();
    assertThat(problem.getString("code")).isEqualTo("duplicate_payment_suspected");
    assertThat(problem.getString("original_payment_id")).isEqualTo(original.json().getString("id"));
    assertThat(problem.getString("original_created_at")).as("the original payment's created_at, as its answer gave it")
        .isEqualTo(original.json().getString("created_at"));
    assertThat(problem.getString("detail")).contains(original.json().getString("id")).doesNotContain(k1);
    assertThat(problem.getString("request_id")).startsWith("req_");

    assertThat(pay(k2, body, Map.of()).status()).as("the refused key's retry is refused too").isEqualTo(409);
    assertThat(charges(k2)).isZero();
    assertThat(charges(k1)).isEqualTo(1);
    Reply replay = pay(k1, body, Map.of());
    assertThat(replay.status()).as("the original's own retry is replayed, not refused").isEqualTo(201);
    assertThat(replay.header("Idempotent-Replayed")).isEqualTo("true");
  }

  @Test
  @DisplayName("past the twin keys remembered for one payload, a refused key's retries are still not counted again")
  void refusedRetriesPastTheRememberedKeysAreNotCountedAgain() {
    String client = "many-keys-" + UUID.randomUUID();
    Map<String, String> headers = Map.of("X-Client-Id", client);
    JsonObject body = Orders.payment(2560, "tok_visa");
    assertThat(pay(Http.newKey(), body, headers).status()).isEqualTo(201);
    for (int i = 0; i < TwinDetector.MAX_KEYS_PER_FINGERPRINT; i++) {
      assertThat(pay(Http.newKey(), body, headers).status()).isEqualTo(409);
    }
    String past = Http.newKey(); // a twin key the payload's hash has no room left to remember
    assertThat(pay(past, body, headers).status()).isEqualTo(409);
    assertThat(pay(past, body, headers).status()).as("its retry").isEqualTo(409);
    assertThat(pay(past, body, headers).status()).as("its retry").isEqualTo(409);
    assertThat(charges(past)).isZero();

    // Its refusal cannot be told from its retries, so none of them counts: a twin is counted once at most.
    JsonObject view = AnomalyViews.anomalies(http, gateway);
    String pastHash = PaymentTwins.keyHash(TestGateway.MERCHANT_A, new IdempotencyKey(past));
    assertThat(AnomalyViews.pairsOf(view, client)).hasSize(TwinDetector.MAX_KEYS_PER_FINGERPRINT)
        .noneMatch(pair -> pair.getString("key_hash").equals(pastHash));
    assertThat(AnomalyViews.standing(view, client).getLong("twins")).isEqualTo(TwinDetector.MAX_KEYS_PER_FINGERPRINT);
  }

  @Test
  @DisplayName("a refused twin's pair in /admin/anomalies names the original's payment, and has no payment_id of its own: it was never charged")
  void refusedTwinHasNoPaymentId() {
    String client = "refused-" + UUID.randomUUID();
    JsonObject body = Orders.payment(2570, "tok_visa");
    Reply original = pay(Http.newKey(), body, Map.of("X-Client-Id", client));
    assertThat(pay(Http.newKey(), body, Map.of("X-Client-Id", client)).status()).isEqualTo(409);
    assertThat(AnomalyViews.pairsOf(AnomalyViews.anomalies(http, gateway), client)).singleElement().satisfies(pair -> {
      assertThat(pair.getString("outcome")).isEqualTo("rejected");
      assertThat(pair.getString("original_payment_id")).isEqualTo(original.json().getString("id"));
      assertThat(pair.containsKey("payment_id")).isTrue();
      assertThat(pair.getString("payment_id")).isNull();
    });
  }

  @Test
  @DisplayName("a refused twin's pair keeps no payment_id when its key is charged later as a declared repeat: the "
      + "refused request charged nothing, the repeat's own pair names the payment")
  void refusedTwinChargedLaterAsIntendedHasNoPaymentId() {
    String client = "refused-then-intended-" + UUID.randomUUID();
    JsonObject body = Orders.payment(2575, "tok_visa");
    String k2 = Http.newKey();
    assertThat(pay(Http.newKey(), body, Map.of("X-Client-Id", client)).status()).isEqualTo(201);
    assertThat(pay(k2, body, Map.of("X-Client-Id", client)).status()).isEqualTo(409);
    Reply repeat = pay(k2, body, Map.of("X-Client-Id", client, TwinDetector.REPEAT_HEADER, "intended"));
    assertThat(repeat.status()).isEqualTo(201);
    List<JsonObject> pairs = AnomalyViews.pairsOf(AnomalyViews.anomalies(http, gateway), client);
    assertThat(pairs).extracting(pair -> pair.getString("outcome")).containsExactly("intended", "rejected");
    assertThat(pairs.get(0).getString("payment_id")).as("the repeat's pair").isEqualTo(repeat.json().getString("id"));
    assertThat(pairs.get(1).getString("payment_id")).as("the refusal's pair: the refused request was never charged")
        .isNull();
  }

  @Test
  @DisplayName("a payment refused by the provider (502, key released) or answered 422 (its key holds another payment) "
      + "does not make the same payload under a new key a twin")
  void notChargedIsNoOriginal() {
    JsonObject refused = Orders.payment(2600, "tok_provider_down");
    assertThat(pay(Http.newKey(), refused, Map.of()).status()).isEqualTo(502);
    Reply again = pay(Http.newKey(), refused, Map.of());
    assertThat(again.status()).as("nothing was charged under the first key").isEqualTo(502);
    assertThat(again.json().getString("code")).isEqualTo("provider_unavailable");

    String held = Http.newKey();
    assertThat(pay(held, Orders.payment(2610, "tok_visa"), Map.of()).status()).isEqualTo(201);
    // Redis lost the key: the gate lets the request on, the twin check makes it the original of its
    // payload, and PostgreSQL answers 422.
    Http.await(redis.send(Request.cmd(Command.DEL).arg(RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(held)))));
    JsonObject other = Orders.payment(2620, "tok_visa");
    assertThat(pay(held, other, Map.of()).status()).as("the key holds another payment").isEqualTo(422);
    String fresh = Http.newKey();
    assertThat(pay(fresh, other, Map.of()).status()).as("the 422'd payment was never claimed").isEqualTo(201);
    assertThat(charges(fresh)).isEqualTo(1);
  }

  @Test
  @DisplayName("the key of an original released without a charge, sent again after the same payment was charged under "
      + "a new key, is refused as that payment's twin, not charged a second time")
  void aReleasedOriginalsKeyIsJudgedAgainstTheChargedTwin() {
    JsonObject body = Orders.payment(2640, "tok_visa");
    String k1 = Http.newKey();
    String k2 = Http.newKey();
    // What an original leaves when the instance that checked it died before charging it, and recovery
    // released its claim: its place as the original, older than any charge of it could go unrecorded
    // (its age is read from the expiry left on Redis's clock, so that is back-dated too), and no claim
    // nor ledger row under its key (free for a retry).
    long age = gateway.config().unrecordedChargeWindow().toMillis() + 1_000;
    long checkedAt = System.currentTimeMillis() - age;
    PaymentRequest request = new PaymentRequest(body.getLong("amount"), body.getString("currency"), body.getString("source"),
        body.getString("merchant_reference"), null, null);
    String anchor = TwinDetector.redisKey(TestGateway.MERCHANT_A,
        PaymentTwins.fingerprint(gateway.config().duplicateFields(), request));
    Http.await(redis.send(Request.cmd(Command.SET).arg(anchor)
        .arg(PaymentTwins.keyHash(TestGateway.MERCHANT_A, new IdempotencyKey(k1)) + "|" + checkedAt).arg("PX")
        .arg(gateway.config().duplicateWindow().toMillis() - age)));

    Reply twin = pay(k2, body, Map.of());
    assertThat(twin.status()).as("the original charged nothing: the payment under a new key goes through").isEqualTo(201);
    Reply retry = pay(k1, body, Map.of());
    // Until this was fixed, k1 was marked allowed when k2 took its place, and its retry was charged.
    assertThat(retry.status()).as(retry.body()).isEqualTo(409);
    assertThat(retry.json().getString("code")).isEqualTo("duplicate_payment_suspected");
    assertThat(retry.json().getString("original_payment_id")).isEqualTo(twin.json().getString("id"));
    assertThat(charges(k1)).isZero();
    assertThat(charges(k2)).isEqualTo(1);
  }

  @Test
  @DisplayName("a twin of an original still at the acquirer is refused even when the wall clock stepped forward "
      + "two minutes since the original was checked")
  void inFlightOriginalAfterAClockStepForward() {
    // The twin check read the original's age on the wall clocks (the anchor's time, written by the
    // anchoring instance, against this one's now). Moving the anchor's time back by the step is what a
    // check after a step forward of the instance's clock (NTP, a resumed VM) read, or one on an
    // instance whose clock runs that far ahead. The age is now read from the anchor's expiry, on
    // Redis's clock: before, this twin was charged beside its original ("expected: 409 but was: 201").
    long clockStepMs = 120_000;
    try (TestGateway slow = TestGateway.start(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "reject",
        "IDEMGATE_SIMULATOR_SLOW_MS", "3000"))) {
      JsonObject body = Orders.payment(4100, "tok_slow");
      String k1 = Http.newKey();
      var original = http.payAsync(slow.apiPort(), TestGateway.KEY_A, k1, body.encode(), Map.of());

      String anchorKey = TwinDetector.redisKey(TestGateway.MERCHANT_A, PaymentTwins.fingerprint(
          slow.config().duplicateFields(), new PaymentRequest(4100, "EUR", "tok_slow", body.getString("merchant_reference"),
              null, null)));
      String k1Hash = PaymentTwins.keyHash(TestGateway.MERCHANT_A, new IdempotencyKey(k1));
      Waits.eventually(Duration.ofSeconds(2), () -> {
        var stored = Http.await(redis.send(Request.cmd(Command.GET).arg(anchorKey)));
        return stored != null && stored.toString().startsWith(k1Hash + "|");
      }, "the original's anchor");
      String stored = Http.await(redis.send(Request.cmd(Command.GET).arg(anchorKey))).toString();
      long at = Long.parseLong(stored.substring(stored.indexOf('|') + 1));
      Http.await(redis.send(Request.cmd(Command.SET).arg(anchorKey).arg(k1Hash + "|" + (at - clockStepMs)).arg("KEEPTTL")));

      Reply twin = pay(slow, Http.newKey(), body.encode(), Map.of());
      assertThat(Http.await(original).status()).isEqualTo(201);
      assertThat(twin.status()).as("the twin of a payment the acquirer is still charging").isEqualTo(409);
    }
  }

  @Test
  @DisplayName("the key of a declined original that lost its place to a charged twin is still a retry when Redis lost "
      + "it: judged against the twin, it is held in PostgreSQL, so its declined answer is replayed, not refused")
  void aDeclinedOriginalsKeyIsReplayedAfterItLostItsPlace() {
    // Without the card in the duplicate fields, a declined card and the card that then pays are one payment.
    try (TestGateway byOrder = TestGateway.start(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "reject",
        "IDEMGATE_DUPLICATE_FIELDS", "amount,currency,merchant_reference",
        "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      JsonObject declinedCard = Orders.payment(2660, "tok_decline");
      String k1 = Http.newKey();
      Reply declined = pay(byOrder, k1, declinedCard.encode(), Map.of());
      assertThat(declined.status()).isEqualTo(402);
      Http.await(http.vertx().timer(100)); // the original's record is let go after its answer, not before
      assertThat(pay(byOrder, Http.newKey(), declinedCard.copy().put("source", "tok_visa").encode(), Map.of()).status())
          .as("the declined original charged nothing: the twin goes through").isEqualTo(201);

      Http.await(redis.send(Request.cmd(Command.DEL).arg(RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(k1)))));
      Reply retry = pay(byOrder, k1, declinedCard.encode(), Map.of());
      assertThat(retry.status()).as(retry.body()).isEqualTo(402);
      assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
      assertThat(retry.json().getString("id")).isEqualTo(declined.json().getString("id"));
      assertThat(AnomalyViews.meter(http, byOrder, "idemgate_anomaly_twins_total{outcome=\"rejected\",policy=\"reject\"}"))
          .as("a retry, not a refused twin").isZero();
      assertThat(AnomalyViews.meter(http, byOrder, "idemgate_anomaly_checks_total{result=\"same_key\"}")).isEqualTo(1);
    }
  }

  @Test
  @DisplayName("a 422 for a retry that changed a field outside the duplicate fields leaves the pending original's "
      + "place: the same payment under a new key is still refused")
  void a422KeepsTheOriginalOfAnotherRequest() {
    String key = Http.newKey();
    JsonObject pending = Orders.payment(2630, "tok_timeout_after_charge");
    assertThat(pay(key, pending, Map.of()).status()).isEqualTo(202);
    JsonObject changed = pending.copy().put("description", "edited");
    assertThat(pay(key, changed, Map.of()).status()).as("another payload under the key").isEqualTo(422);
    Reply twin = pay(Http.newKey(), pending, Map.of());
    assertThat(twin.status()).as("the pending payment's twin").isEqualTo(409);
    assertThat(twin.json().getString("code")).isEqualTo("duplicate_payment_suspected");
  }

  @Test
  @DisplayName("the retry of a paid key is replayed, not refused nor counted as a twin against its client, when Redis "
      + "lost the key and a later payment of the same payload holds the twin slot; a twin refused after it still counts")
  void retryOfAHeldKeyIsNeverRefused() {
    try (TestGateway shortWindow = TestGateway.start(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "reject",
        "IDEMGATE_DUPLICATE_WINDOW", "5s"))) {
      JsonObject body = Orders.payment(2700, "tok_visa");
      String k1 = Http.newKey();
      String k2 = Http.newKey();
      String client = "shop-" + UUID.randomUUID();
      Map<String, String> headers = Map.of("X-Client-Id", client);
      Reply first = pay(shortWindow, k1, body.encode(), headers);
      assertThat(first.status()).isEqualTo(201);
      // Five seconds: the second payment's slot must still stand when the retry comes, a dozen requests
      // later. With two, that left 1.5 s to spare, which a loaded machine can use up: the slot
      // could expire first, and the retry then counts as a new payment.
      Waits.sleep(5_300);
      assertThat(pay(shortWindow, k2, body.encode(), headers).status())
          .as("past the window the same payload is a new payment, the slot's new original").isEqualTo(201);
      String k3 = Http.newKey();
      assertThat(pay(shortWindow, k3, body.encode(), headers).status()).as("a twin of k2").isEqualTo(409);
      assertThat(pay(shortWindow, k3, body.encode(), headers).status()).as("its retry, not counted again").isEqualTo(409);
      // Redis loses k1 (a restart, an eviction): only PostgreSQL still knows it.
      Http.await(redis.send(Request.cmd(Command.DEL).arg(RedisGate.redisKey(TestGateway.MERCHANT_A, new IdempotencyKey(k1)))));

      // The same payload in another field order: the same payment, but not the same bytes, so the
      // in-process replay cache does not answer and the request goes through the gate.
      JsonObject reordered = new JsonObject();
      List<String> fields = new ArrayList<>(body.fieldNames());
      Collections.reverse(fields);
      fields.forEach(field -> reordered.put(field, body.getValue(field)));
      Reply retry = pay(shortWindow, k1, reordered.encode(), headers);
      assertThat(retry.status()).isEqualTo(201);
      assertThat(retry.header("Idempotent-Replayed")).isEqualTo("true");
      assertThat(retry.json().getString("id")).isEqualTo(first.json().getString("id"));
      assertThat(charges(shortWindow, k1)).isEqualTo(1);
      // The check judged the retry a twin of k2 before PostgreSQL said k1 is held: it was no twin, so
      // neither the client's figures nor the recent pairs show it. Only k3, refused for good, counts.
      JsonObject view = AnomalyViews.anomalies(http, shortWindow);
      assertThat(AnomalyViews.standing(view, client).getLong("payments")).as("k1, k2 and k3; the retry is no new payment").isEqualTo(3);
      assertThat(AnomalyViews.standing(view, client).getLong("twins")).isEqualTo(1);
      assertThat(AnomalyViews.pairsOf(view, client)).singleElement().satisfies(pair -> {
        assertThat(pair.getString("key_hash")).isEqualTo(PaymentTwins.keyHash(TestGateway.MERCHANT_A, new IdempotencyKey(k3)));
        assertThat(pair.getString("outcome")).isEqualTo("rejected");
      });
    }
  }

  @Test
  @DisplayName("Idempotency-Repeat: intended lets a deliberate repeat through, also on a key refused before")
  void declaredRepeatIsCharged() {
    JsonObject body = Orders.payment(2600, "tok_visa");
    String k1 = Http.newKey();
    String k2 = Http.newKey();
    String k3 = Http.newKey();
    Reply original = pay(k1, body, Map.of());
    assertThat(pay(k2, body, Map.of()).status()).isEqualTo(409);
    Reply repeat = pay(k2, body, Map.of(TwinDetector.REPEAT_HEADER, "intended"));
    assertThat(repeat.status()).isEqualTo(201);
    assertThat(repeat.json().getString("id")).isNotEqualTo(original.json().getString("id"));
    assertThat(pay(k3, body, Map.of(TwinDetector.REPEAT_HEADER, "intended")).status()).isEqualTo(201);
    assertThat(charges(k2)).isEqualTo(1);
    assertThat(charges(k3)).isEqualTo(1);
    String metrics = http.get(gateway.managementPort(), "/metrics", null).body();
    assertThat(metrics).containsPattern("idemgate_anomaly_twins_total\\{outcome=\"intended\",policy=\"reject\"} [1-9]");
    assertThat(metrics).containsPattern("idemgate_anomaly_twins_total\\{outcome=\"rejected\",policy=\"reject\"} [1-9]");
  }

  @Test
  @DisplayName("after a declined original, a repeat declared intended that is charged becomes the one twins are judged "
      + "against: a further twin is refused naming it, not let through as a twin of the declined original")
  void twinAfterAChargedIntendedRepeatIsRefused() {
    // Without the card in the duplicate fields, a declined card and the card that then pays are one payment.
    try (TestGateway byOrder = TestGateway.start(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "reject",
        "IDEMGATE_DUPLICATE_FIELDS", "amount,currency,merchant_reference"))) {
      JsonObject declinedCard = Orders.payment(2650, "tok_decline");
      JsonObject card = declinedCard.copy().put("source", "tok_visa");
      assertThat(pay(byOrder, Http.newKey(), declinedCard.encode(), Map.of()).status()).isEqualTo(402);
      Http.await(http.vertx().timer(100)); // the original's record is let go after its answer, not before
      Reply repeat = pay(byOrder, Http.newKey(), card.encode(), Map.of(TwinDetector.REPEAT_HEADER, "intended"));
      assertThat(repeat.status()).isEqualTo(201);

      String twinKey = Http.newKey();
      Reply twin = pay(byOrder, twinKey, card.encode(), Map.of());
      assertThat(twin.status()).as(twin.body()).isEqualTo(409);
      assertThat(twin.json().getString("original_payment_id")).isEqualTo(repeat.json().getString("id"));
      assertThat(charges(byOrder, twinKey)).isZero();
    }
  }

  @Test
  @DisplayName("a declined payment may be tried again under a new key: only a possible charge anchors twins")
  void declinedOriginalDoesNotBlock() {
    JsonObject body = Orders.payment(2700, "tok_decline");
    assertThat(pay(Http.newKey(), body, Map.of()).status()).isEqualTo(402);
    Http.await(http.vertx().timer(100)); // the original's record is let go after its answer, not before
    assertThat(pay(Http.newKey(), body, Map.of()).status()).isEqualTo(402);
  }

  @Test
  @DisplayName("a storefront that tries each declined card once more under a new key, as it should (nothing was "
      + "charged), is not flagged: those twins are let through and are payments, not twins held against it; a refused "
      + "twin of a charged payment still counts")
  void retriesOfDeclinedPaymentsAreNotHeldAgainstTheClient() {
    String storefront = "storefront-" + UUID.randomUUID();
    Map<String, String> from = Map.of("X-Client-Id", storefront);
    for (int i = 0; i < 20; i++) {
      assertThat(pay(Http.newKey(), Orders.payment(2900, "tok_customer_" + i), from).status()).isEqualTo(201);
      JsonObject declinedCard = Orders.payment(2900, "tok_decline");
      assertThat(pay(Http.newKey(), declinedCard, from).status()).isEqualTo(402);
      Http.await(http.vertx().timer(100)); // the original's record is let go after its answer, not before
      assertThat(pay(Http.newKey(), declinedCard, from).status()).as("tried again: declined again").isEqualTo(402);
    }
    JsonObject view = AnomalyViews.anomalies(http, gateway);
    JsonObject standing = AnomalyViews.standing(view, storefront);
    assertThat(standing.getBoolean("flagged")).as("flagged: " + standing.encode()).isFalse();
    assertThat(standing.getLong("twins")).as(standing.encode()).isZero();
    assertThat(standing.getLong("payments")).isEqualTo(60);
    assertThat(AnomalyViews.pairsOf(view, storefront)).hasSize(20)
        .allSatisfy(pair -> assertThat(pair.getString("outcome")).isEqualTo("allowed"));

    JsonObject charged = Orders.payment(2900, "tok_visa");
    assertThat(pay(Http.newKey(), charged, from).status()).isEqualTo(201);
    assertThat(pay(Http.newKey(), charged, from).status()).isEqualTo(409);
    assertThat(AnomalyViews.standing(AnomalyViews.anomalies(http, gateway), storefront).getLong("twins"))
        .as("a refused twin of a charged payment").isEqualTo(1);
  }

  @Test
  @DisplayName("payments alike but for different customers are all charged under policy reject")
  void similarPaymentsAreCharged() {
    // One reference shared by every payment of this run (a fresh one per run: Redis outlives the test).
    String sharedReference = Orders.payment(1000, "tok_visa").getString("merchant_reference");
    for (int i = 0; i < 10; i++) {
      assertThat(pay(Http.newKey(), Orders.payment(1000, "tok_customer_" + i).put("merchant_reference", sharedReference),
          Map.of()).status()).isEqualTo(201);
    }
  }
}
