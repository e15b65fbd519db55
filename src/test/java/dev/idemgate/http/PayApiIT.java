package dev.idemgate.http;

import static dev.idemgate.support.Waits.sleep;
import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.KEY_B;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Every row of the API table of DESIGN §2, against a gateway on the real PostgreSQL and Redis. */
class PayApiIT {
  private static TestGateway gateway;
  private static Http http;
  private static int port;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_SLOW_MS", "1500"));
    http = new Http();
    port = gateway.apiPort();
  }

  @AfterAll
  static void stop() {
    http.close();
    gateway.close();
  }

  private Reply pay(String key, JsonObject body) {
    return http.pay(port, KEY_A, key, body);
  }

  @Test
  @DisplayName("a new payment that succeeds gets 201, the payment, Location, the key echoed and its expiry")
  void newPaymentSucceeds() {
    String key = Http.newKey();
    Reply reply = pay(key, Http.payment(1999, "tok_visa"));

    assertThat(reply.status()).isEqualTo(201);
    JsonObject payment = reply.json();
    assertThat(payment.getString("status")).isEqualTo("succeeded");
    assertThat(payment.getLong("amount")).isEqualTo(1999);
    assertThat(payment.getString("currency")).isEqualTo("EUR");
    assertThat(payment.getString("provider")).isEqualTo("simulator");
    assertThat(payment.getString("provider_reference")).startsWith("ch_sim_");
    assertThat(payment.getString("id")).startsWith("pay_");
    assertThat(reply.header("Location")).isEqualTo("/v1/payments/" + payment.getString("id"));
    assertThat(reply.header("Idempotency-Key")).isEqualTo(key);
    assertThat(reply.header("Idempotent-Replayed")).isNull();
    ZonedDateTime expires = ZonedDateTime.parse(reply.header("Idempotency-Key-Expires"), DateTimeFormatter.RFC_1123_DATE_TIME);
    assertThat(expires).isAfter(ZonedDateTime.now().plusHours(23)).isBefore(ZonedDateTime.now().plusHours(25));
  }

  @Test
  @DisplayName("a retry with the same key and payload replays the stored response byte for byte, marked Idempotent-Replayed")
  void retryIsReplayed() {
    String key = Http.newKey();
    JsonObject body = Http.payment(2500, "tok_visa");
    Reply first = pay(key, body);
    // Same payload, other key order and spacing: the same payment.
    String reordered = "{ \"merchant_reference\": \"" + body.getString("merchant_reference")
        + "\", \"source\": \"tok_visa\", \"currency\": \"EUR\", \"amount\": 2500 }";
    Reply second = Http.await(http.payAsync(port, KEY_A, key, reordered, Map.of()));

    assertThat(second.status()).isEqualTo(201);
    assertThat(second.body()).isEqualTo(first.body());
    assertThat(second.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(second.header("Location")).isEqualTo(first.header("Location"));
    assertThat(second.header("Idempotency-Key-Expires")).isEqualTo(first.header("Idempotency-Key-Expires"));
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("the /v1/payments alias and /pay are one operation: a retry on the alias is a replay")
  void aliasIsSameOperation() {
    String key = Http.newKey();
    JsonObject body = Http.payment(300, "tok_visa");
    Reply first = pay(key, body);
    Reply alias = http.send(HttpMethod.POST, port, "/v1/payments",
        Map.of("Authorization", "Bearer " + KEY_A, "Content-Type", "application/json", "Idempotency-Key", key),
        Buffer.buffer(body.encode()));
    assertThat(alias.status()).isEqualTo(201);
    assertThat(alias.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(alias.body()).isEqualTo(first.body());
  }

  @Test
  @DisplayName("a declined payment gets 402 with the decline code, and its retry replays the decline")
  void declineIsStoredAndReplayed() {
    String key = Http.newKey();
    JsonObject body = Http.payment(1000, "tok_insufficient_funds");
    Reply first = pay(key, body);
    Reply again = pay(key, body);

    assertThat(first.status()).isEqualTo(402);
    assertThat(first.json().getString("status")).isEqualTo("declined");
    assertThat(first.json().getString("decline_code")).isEqualTo("insufficient_funds");
    assertThat(again.status()).isEqualTo(402);
    assertThat(again.body()).isEqualTo(first.body());
    assertThat(again.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("tok_decline is declined with card_declined")
  void cardDeclined() {
    Reply reply = pay(Http.newKey(), Http.payment(1000, "tok_decline"));
    assertThat(reply.status()).isEqualTo(402);
    assertThat(reply.json().getString("decline_code")).isEqualTo("card_declined");
  }

  @Test
  @DisplayName("a retry while the first is in flight gets 409 idempotency_key_in_use with Retry-After, then the replay")
  void retryWhileInFlight() {
    String key = Http.newKey();
    JsonObject body = Http.payment(700, "tok_slow");
    Future<Reply> first = http.payAsync(port, KEY_A, key, body.encode(), Map.of());
    awaitInFlight(key);
    Reply twin = pay(key, body);

    assertThat(twin.status()).isEqualTo(409);
    assertThat(twin.json().getString("code")).isEqualTo("idempotency_key_in_use");
    assertThat(twin.header("Retry-After")).isEqualTo("1");
    assertThat(twin.header("Content-Type")).isEqualTo("application/problem+json");
    Reply done = Http.await(first);
    assertThat(done.status()).isEqualTo(201);
    Reply later = pay(key, body);
    assertThat(later.status()).isEqualTo(201);
    assertThat(later.body()).isEqualTo(done.body());
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("the same key with a different payload gets 422 idempotency_key_reused and charges nothing more")
  void sameKeyOtherPayload() {
    String key = Http.newKey();
    pay(key, Http.payment(1000, "tok_visa"));
    Reply reused = pay(key, Http.payment(1001, "tok_visa"));

    assertThat(reused.status()).isEqualTo(422);
    assertThat(reused.json().getString("code")).isEqualTo("idempotency_key_reused");
    assertThat(reused.header("Idempotency-Key")).isEqualTo(key);
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("a request without Idempotency-Key gets 400 idempotency_key_missing")
  void missingKey() {
    Reply reply = pay(null, Http.payment(100, "tok_visa"));
    assertThat(reply.status()).isEqualTo(400);
    assertThat(reply.json().getString("code")).isEqualTo("idempotency_key_missing");
  }

  @Test
  @DisplayName("a key with a space, or longer than 255 characters, gets 400 idempotency_key_invalid")
  void invalidKey() {
    assertThat(pay("has space", Http.payment(100, "tok_visa")).json().getString("code")).isEqualTo("idempotency_key_invalid");
    Reply tooLong = pay("k".repeat(256), Http.payment(100, "tok_visa"));
    assertThat(tooLong.status()).isEqualTo(400);
    assertThat(tooLong.json().getString("code")).isEqualTo("idempotency_key_invalid");
  }

  @Test
  @DisplayName("the quoted sf-string form of a key is the same key as its bare form")
  void quotedKeyIsSameKey() {
    String key = Http.newKey();
    JsonObject body = Http.payment(100, "tok_visa");
    Reply bare = pay(key, body);
    Reply quoted = pay("\"" + key + "\"", body);
    assertThat(quoted.status()).isEqualTo(201);
    assertThat(quoted.header("Idempotent-Replayed")).isEqualTo("true");
    assertThat(quoted.body()).isEqualTo(bare.body());
  }

  @Test
  @DisplayName("the admin charge log finds a key's charge by its quoted form as by its bare one, and refuses a "
      + "key= that is no key with 400 instead of answering that nothing was charged")
  void chargeLogTakesTheKeyInEitherForm() {
    String key = Http.newKey();
    assertThat(pay("\"" + key + "\"", Http.payment(100, "tok_visa")).status()).isEqualTo(201);

    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, "\"" + key + "\"")).isEqualTo(1);
    for (String notAKey : List.of("", "a b", "\"\"")) {
      Reply refused = http.get(gateway.managementPort(), "/admin/simulator/charges?merchant=" + TestGateway.MERCHANT_A
          + "&key=" + java.net.URLEncoder.encode(notAKey, StandardCharsets.UTF_8), TestGateway.ADMIN_TOKEN);
      assertThat(refused.status()).as("key=%s", notAKey).isEqualTo(400);
      assertThat(refused.json().getString("code")).isEqualTo("invalid_request");
    }
  }

  @Test
  @DisplayName("an invalid body gets 400 invalid_request listing each field's problem")
  void invalidBody() {
    Reply reply = pay(Http.newKey(), new JsonObject().put("amount", 0).put("currency", "eur").put("colour", "red"));
    assertThat(reply.status()).isEqualTo(400);
    JsonObject problem = reply.json();
    assertThat(problem.getString("code")).isEqualTo("invalid_request");
    assertThat(problem.getJsonArray("errors").stream().map(e -> ((JsonObject) e).getString("field")))
        .containsExactlyInAnyOrder("amount", "currency", "source", "colour");
  }

  @Test
  @DisplayName("a body that is not JSON gets 400 invalid_request")
  void notJson() {
    Reply reply = Http.await(http.payAsync(port, KEY_A, Http.newKey(), "{not json", Map.of()));
    assertThat(reply.status()).isEqualTo(400);
    assertThat(reply.json().getString("code")).isEqualTo("invalid_request");
  }

  @Test
  @DisplayName("a card number anywhere in the body gets 400 card_data_rejected, and the number is neither echoed nor stored")
  void cardDataRejected() {
    String key = Http.newKey();
    JsonObject body = Http.payment(100, "tok_visa").put("metadata", new JsonObject().put("note", "4242 4242 4242 4242"));
    Reply reply = pay(key, body);
    assertThat(reply.status()).isEqualTo(400);
    assertThat(reply.json().getString("code")).isEqualTo("card_data_rejected");
    // Not "4242" alone: four digits turn up by chance in a request id now and then.
    assertThat(reply.body()).doesNotContain("4242 4242", "42424242");
    // Nothing was claimed: the same key with a clean body is a new payment.
    Reply clean = pay(key, Http.payment(100, "tok_visa"));
    assertThat(clean.status()).isEqualTo(201);
    assertThat(clean.header("Idempotent-Replayed")).isNull();
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "the API key the payment is sent with, in the description|description|key: KEY_A|$.description|an API key",
      "another merchant's API key, in the merchant reference|merchant_reference|KEY_B|$.merchant_reference|an API key",
      "an API key quoted in a metadata value|metadata|\"Bearer KEY_B\".|$.metadata.note|an API key",
      "an API key as the payment token|source|KEY_B|$.source|an API key",
      "the admin token in the description|description|see ADMIN_TOKEN|$.description|the admin token"})
  @DisplayName("an API key (the caller's or any merchant's) or the admin token anywhere in the body gets 400 "
      + "credential_rejected naming the field, as a card number does: it is neither echoed nor stored")
  void credentialsRejected(String what, String field, String value, String path, String named) {
    String sent = value.replace("KEY_A", KEY_A).replace("KEY_B", KEY_B).replace("ADMIN_TOKEN", TestGateway.ADMIN_TOKEN);
    String key = Http.newKey();
    JsonObject body = Http.payment(100, "tok_visa");
    if (field.equals("metadata")) {
      body.put("metadata", new JsonObject().put("note", sent));
    } else {
      body.put(field, sent);
    }
    Reply reply = pay(key, body);
    assertThat(reply.status()).as(what).isEqualTo(400);
    assertThat(reply.json().getString("code")).isEqualTo("credential_rejected");
    assertThat(reply.json().getString("detail")).contains(path, named);
    assertThat(reply.body()).doesNotContain(KEY_A, KEY_B, TestGateway.ADMIN_TOKEN);
    // Nothing was claimed: the same key with a clean body is a new payment.
    Reply clean = pay(key, Http.payment(100, "tok_visa"));
    assertThat(clean.status()).isEqualTo(201);
    assertThat(clean.header("Idempotent-Replayed")).isNull();
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "the caller's own API key|KEY_A|credential_rejected|an API key",
      "the caller's own API key, quoted|\"KEY_A\"|credential_rejected|an API key",
      "another merchant's API key as a word|order/KEY_B|credential_rejected|an API key",
      "the admin token|ADMIN_TOKEN-7|credential_rejected|the admin token"})
  @DisplayName("an Idempotency-Key holding an API key or the admin token gets 400 naming the header, "
      + "before anything is claimed: the key is neither echoed, stored nor charged under")
  void secretIdempotencyKeysRejected(String what, String sent, String code, String named) {
    String key = sent.replace("KEY_A", KEY_A).replace("KEY_B", KEY_B).replace("ADMIN_TOKEN", TestGateway.ADMIN_TOKEN);
    String bare = key.replace("\"", "");
    java.time.OffsetDateTime sentAt = java.time.OffsetDateTime.now().minusSeconds(1);
    Reply reply;
    Map<String, String> accessLine;
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      reply = pay(key, Http.payment(100, "tok_visa"));
      String requestId = reply.header("X-Request-Id");
      dev.idemgate.support.Waits.eventually(Duration.ofSeconds(5),
          () -> access.events().stream().anyMatch(e -> String.valueOf(e.getKeyValuePairs()).contains(requestId)),
          "the access line of " + requestId);
      accessLine = access.events().stream().filter(e -> String.valueOf(e.getKeyValuePairs()).contains(requestId))
          .findFirst().orElseThrow().getKeyValuePairs().stream().filter(kv -> kv.value != null)
          .collect(java.util.stream.Collectors.toMap(kv -> kv.key, kv -> String.valueOf(kv.value), (a, b) -> a));
    }
    // No hash of the key either: a credential's would let anyone holding the log check a guess.
    assertThat(accessLine).containsEntry("status", "400").doesNotContainKey("key_sha256");
    assertThat(accessLine.toString()).doesNotContain(bare);
    assertThat(reply.status()).as(what).isEqualTo(400);
    assertThat(reply.json().getString("code")).isEqualTo(code);
    assertThat(reply.json().getString("detail")).contains("Idempotency-Key", named);
    assertThat(reply.body()).doesNotContain(bare);
    assertThat(reply.header("Idempotency-Key")).isNull();
    try (TestDb db = new TestDb(http.vertx())) {
      assertThat(db.scalar("SELECT count(*) FROM idemgate.idempotency_keys WHERE idempotency_key = $1 AND created_at >= $2",
          bare, sentAt)).isEqualTo(0L);
    }
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isZero(); // as sent: quoted if it was
  }

  @Test
  @DisplayName("an Idempotency-Key made of digits is a key, even where they pass the Luhn check after a card network's "
      + "first digits: the key is not looked at for card numbers")
  void numericKeysAreKeys() {
    // Epoch milliseconds (13 digits), yyyyMMddHHmmssSSS (17) and a random positive 64-bit number (19,
    // four in nine of them starting with 3 to 6, as Visa, Mastercard, Amex and Discover cards do): one
    // value in ten is Luhn-valid, and a body holding one is refused. Such keys were refused once, and
    // legitimate retries got 400.
    long millis = luhnValidFrom(System.currentTimeMillis());
    long stamp = luhnValidFrom(Long.parseLong(DateTimeFormatter.ofPattern("yyyyMMddHHmmssSSS")
        .format(ZonedDateTime.now(java.time.ZoneOffset.UTC))));
    long random = luhnValidFrom(4_000_000_000_000_000_000L + java.util.concurrent.ThreadLocalRandom.current()
        .nextLong(1_000_000_000_000_000_000L));
    for (String key : List.of("order-" + millis, stamp + "-" + Http.newKey(), Long.toString(random))) {
      assertThat(pay(key, Http.payment(100, "tok_visa")).status()).as(key).isEqualTo(201);
    }
  }

  /** The first number from {@code n} that the card scan of a body takes for a card. */
  private static long luhnValidFrom(long n) {
    while (!dev.idemgate.payment.CardNumberScanner.containsCardNumber(Long.toString(n))) {
      n++;
    }
    return n;
  }

  @Test
  @DisplayName("a text that merely starts like an API key, holds a part of one, or another merchant's key inside a longer "
      + "word, is a valid description: keys known only by their hash are looked for as whole words")
  void nearKeysAreNotCredentials() {
    Reply reply = pay(Http.newKey(), Http.payment(100, "tok_visa")
        .put("description", "sk_test_merchant " + KEY_A.substring(0, KEY_A.length() - 1) + " " + KEY_B + "x"));
    assertThat(reply.status()).isEqualTo(201);
  }

  @Test
  @DisplayName("a wrong or missing API key gets 401 unauthorized")
  void unauthorized() {
    Reply wrong = http.pay(port, "sk_wrong_key_123", Http.newKey(), Http.payment(100, "tok_visa"));
    assertThat(wrong.status()).isEqualTo(401);
    assertThat(wrong.json().getString("code")).isEqualTo("unauthorized");
    Reply none = http.send(HttpMethod.POST, port, "/pay",
        Map.of("Content-Type", "application/json", "Idempotency-Key", "k"), Buffer.buffer("{}"));
    assertThat(none.status()).isEqualTo(401);
  }

  @Test
  @DisplayName("a body over 64 KiB gets 413 payload_too_large")
  void tooLarge() {
    String big = "{\"description\":\"" + "a".repeat(70 * 1024) + "\"}";
    Reply reply = Http.await(http.payAsync(port, KEY_A, Http.newKey(), big, Map.of()));
    assertThat(reply.status()).isEqualTo(413);
    assertThat(reply.json().getString("code")).isEqualTo("payload_too_large");
  }

  @Test
  @DisplayName("a body that is not application/json gets 415 unsupported_media_type")
  void wrongMediaType() {
    Reply reply = http.send(HttpMethod.POST, port, "/pay",
        Map.of("Authorization", "Bearer " + KEY_A, "Content-Type", "text/plain", "Idempotency-Key", Http.newKey()),
        Buffer.buffer("amount=1"));
    assertThat(reply.status()).isEqualTo(415);
    assertThat(reply.json().getString("code")).isEqualTo("unsupported_media_type");
  }

  @Test
  @DisplayName("errors are problem+json with type, title, status, detail, code and request_id")
  void problemShape() {
    Reply reply = pay(null, Http.payment(100, "tok_visa"));
    assertThat(reply.header("Content-Type")).isEqualTo("application/problem+json");
    JsonObject problem = reply.json();
    assertThat(problem.fieldNames()).contains("type", "title", "status", "detail", "code", "request_id");
    assertThat(problem.getInteger("status")).isEqualTo(400);
    assertThat(problem.getString("request_id")).isEqualTo(reply.header("X-Request-Id"));
  }

  @Test
  @DisplayName("a provider that fails before charging gets 502 provider_unavailable and the key is released")
  void providerDown() {
    String key = Http.newKey();
    Reply down = pay(key, Http.payment(100, "tok_provider_down"));
    assertThat(down.status()).isEqualTo(502);
    assertThat(down.json().getString("code")).isEqualTo("provider_unavailable");
    assertThat(down.json().getString("detail")).contains("the key is free");
    assertThat(down.header("Retry-After")).isNull();
    // Released: the same key may now carry a different payment.
    Reply next = pay(key, Http.payment(100, "tok_visa"));
    assertThat(next.status()).isEqualTo(201);
  }

  @Test
  @DisplayName("when PostgreSQL does not take the release after a provider failure, the 502 says the key stays in use "
      + "and when to retry, instead of calling it free")
  void providerDownWithAHeldKey() {
    String prefix = "release-refused-" + Http.newKey().replaceAll("[^A-Za-z0-9]", "");
    String trigger = "refuse_release_" + Integer.toHexString(prefix.hashCode() & 0x7fffffff);
    // Only this test's keys: every other DELETE goes through.
    try (TestDb db = new TestDb(http.vertx())) {
      db.query("CREATE FUNCTION idemgate." + trigger + "() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
          + "IF OLD.idempotency_key LIKE '" + prefix + "%' THEN RAISE EXCEPTION 'release refused by the test'; END IF; "
          + "RETURN OLD; END $f$");
      db.query("CREATE TRIGGER " + trigger + " BEFORE DELETE ON idemgate.idempotency_keys FOR EACH ROW EXECUTE FUNCTION idemgate."
          + trigger + "()");
      try {
        String key = prefix + "-1";
        JsonObject body = Http.payment(100, "tok_provider_down");
        Reply down = pay(key, body);
        assertThat(down.status()).isEqualTo(502);
        assertThat(down.json().getString("code")).isEqualTo("provider_unavailable");
        assertThat(down.json().getString("detail")).contains("stays in use").doesNotContain("is free");
        GatewayConfig config = gateway.config();
        long untilReleased = config.lease().plus(config.providerTimeout().multipliedBy(2)).plus(config.recoveryInterval())
            .toSeconds();
        assertThat(down.header("Retry-After")).isEqualTo(String.valueOf(untilReleased));
        assertThat(pay(key, body).status()).as("the key is still held").isEqualTo(409);
      } finally {
        db.query("DROP TRIGGER " + trigger + " ON idemgate.idempotency_keys");
        db.query("DROP FUNCTION idemgate." + trigger + "()");
      }
    }
  }

  @Test
  @DisplayName("an answer lost after charging gets 202 pending with Location and no key expiry (known only once the "
      + "outcome is), and its retry replays the 202")
  void unknownOutcomeIsPending() {
    String key = Http.newKey();
    JsonObject body = Http.payment(100, "tok_timeout_after_charge");
    Reply first = pay(key, body);
    assertThat(first.status()).isEqualTo(202);
    assertThat(first.json().getString("status")).isEqualTo("pending");
    assertThat(first.header("Location")).startsWith("/v1/payments/pay_");
    assertThat(first.header("Idempotency-Key-Expires")).isNull();
    Reply retry = pay(key, body);
    assertThat(retry.status()).isEqualTo(202);
    assertThat(retry.json().getString("id")).isEqualTo(first.json().getString("id"));
    assertThat(retry.header("Idempotency-Key-Expires")).isNull();
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("every answer carries Date, the server's clock: a payment, a replay, a problem, a read")
  void answersCarryDate() {
    String key = Http.newKey();
    Reply created = pay(key, Http.payment(300, "tok_visa"));
    Reply replayed = pay(key, Http.payment(300, "tok_visa"));
    Reply problem = Http.await(http.payAsync(port, KEY_A, key, "{not json", Map.of()));
    Reply read = http.get(port, created.header("Location"), KEY_A);
    for (Reply reply : List.of(created, replayed, problem, read)) {
      ZonedDateTime date = ZonedDateTime.parse(reply.header("Date"), DateTimeFormatter.RFC_1123_DATE_TIME);
      assertThat(Duration.between(date, ZonedDateTime.now()).abs()).as(reply.status() + " " + reply.header("Date"))
          .isLessThan(Duration.ofSeconds(5));
    }
  }

  @Test
  @DisplayName("Date is the time of the answer, not of the request's arrival: a payment answered after 3 s carries a Date 3 s on")
  void dateIsTheAnswersTime() {
    try (TestGateway slow = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_SLOW_MS", "3000"))) {
      Instant sent = Instant.now();
      Reply reply = http.pay(slow.apiPort(), KEY_A, Http.newKey(), Http.payment(320, "tok_slow"));
      assertThat(reply.status()).isEqualTo(201);
      Instant date = ZonedDateTime.parse(reply.header("Date"), DateTimeFormatter.RFC_1123_DATE_TIME).toInstant();
      assertThat(date).as("Date %s of an answer sent 3 s after %s", reply.header("Date"), sent)
          .isAfterOrEqualTo(sent.truncatedTo(ChronoUnit.SECONDS).plusSeconds(2));
    }
  }

  @Test
  @DisplayName("HEAD on a payment answers as GET does, without the body; HEAD of another merchant's payment is 404")
  void headOfAPayment() {
    Reply created = pay(Http.newKey(), Http.payment(310, "tok_visa"));
    Reply head = http.send(HttpMethod.HEAD, port, created.header("Location"), Map.of("Authorization", "Bearer " + KEY_A), null);
    assertThat(head.status()).isEqualTo(200);
    assertThat(head.header("Content-Type")).isEqualTo("application/json");
    assertThat(head.body()).isNullOrEmpty();
    Reply get = http.get(port, created.header("Location"), KEY_A);
    assertThat(head.header("Content-Length")).as("the length GET's body has")
        .isEqualTo(String.valueOf(get.body().getBytes(StandardCharsets.UTF_8).length));
    assertThat(http.send(HttpMethod.HEAD, port, created.header("Location"), Map.of("Authorization", "Bearer " + KEY_B), null)
        .status()).isEqualTo(404);
  }

  @Test
  @DisplayName("keys are scoped per merchant: merchant B with A's key gets its own payment and never A's response")
  void keysScopedPerMerchant() {
    String key = Http.newKey();
    JsonObject body = Http.payment(4200, "tok_visa");
    Reply a = http.pay(port, KEY_A, key, body);
    Reply b = http.pay(port, KEY_B, key, body);

    assertThat(a.status()).isEqualTo(201);
    assertThat(b.status()).isEqualTo(201);
    assertThat(b.header("Idempotent-Replayed")).isNull();
    assertThat(b.json().getString("id")).isNotEqualTo(a.json().getString("id"));
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_A, key)).isEqualTo(1);
    assertThat(SimulatorLog.charges(http, gateway, TestGateway.MERCHANT_B, key)).isEqualTo(1);
  }

  @Test
  @DisplayName("GET /v1/payments/{id} returns the payment to its merchant and 404 to any other")
  void getPaymentScopedPerMerchant() {
    Reply created = pay(Http.newKey(), Http.payment(555, "tok_visa"));
    String location = created.header("Location");

    Reply own = http.get(port, location, KEY_A);
    assertThat(own.status()).isEqualTo(200);
    assertThat(own.body()).isEqualTo(created.body());
    Reply other = http.get(port, location, KEY_B);
    assertThat(other.status()).isEqualTo(404);
    assertThat(other.json().getString("code")).isEqualTo("not_found");
    assertThat(http.get(port, "/v1/payments/pay_missing", KEY_A).status()).isEqualTo(404);
    assertThat(http.get(port, location, null).status()).isEqualTo(401);
  }

  @Test
  @DisplayName("GET /v1/payments/{id} with an id PostgreSQL cannot even take (a NUL byte) gets 404, not 503 store_unavailable")
  void getPaymentWithUnstorableId() {
    Reply nul = http.get(port, "/v1/payments/%00", KEY_A);
    assertThat(nul.status()).as(nul.body()).isEqualTo(404);
    assertThat(nul.json().getString("code")).isEqualTo("not_found");
    assertThat(nul.header("Retry-After")).isNull();
    assertThat(http.get(port, "/v1/payments/pay_" + "0".repeat(31) + "%00", KEY_A).status()).isEqualTo(404);
  }

  @Test
  @DisplayName("a POST sent with no body at all (neither Content-Length nor Transfer-Encoding) gets 400 invalid_request, not 500")
  void postWithoutBody() throws IOException {
    try (Socket socket = new Socket("127.0.0.1", port)) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
          + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + Http.newKey()
          + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertThat(answer).startsWith("HTTP/1.1 400 ");
      assertThat(answer).contains("\"code\":\"invalid_request\"");
    }
  }

  @Test
  @DisplayName("an Expect header other than 100-continue gets 417 expectation_failed, not 500, and logs no error")
  void unsupportedExpectation() throws IOException {
    try (CapturedLogs errors = CapturedLogs.of(Problems.class); Socket socket = new Socket("127.0.0.1", port)) {
      socket.setSoTimeout(10_000);
      String body = Http.payment(1000, "tok_visa").encode();
      socket.getOutputStream().write(("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
          + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + Http.newKey()
          + "\r\nExpect: 100-continue, something-else\r\nContent-Length: " + body.length()
          + "\r\nConnection: close\r\n\r\n" + body).getBytes(StandardCharsets.US_ASCII));
      String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertThat(answer).startsWith("HTTP/1.1 417 ");
      assertThat(answer).contains("\"code\":\"expectation_failed\"");
      assertThat(errors.events()).isEmpty();
    }
  }

  /** Waits until the first request holds the claim, so that the twin is really second. */
  private static void awaitInFlight(String key) {
    try (dev.idemgate.support.TestDb db = new dev.idemgate.support.TestDb(http.vertx())) {
      for (int i = 0; i < 100; i++) {
        if ("PROCESSING".equals(db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 "
            + "AND idempotency_key = $2", TestGateway.MERCHANT_A, key))) {
          return;
        }
        sleep(50);
      }
    }
    throw new AssertionError("the first request never got in flight");
  }

}
