package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.support.Http;
import dev.idemgate.support.Http.Reply;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.json.JsonObject;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * Policy reject when the wall clock steps forward while an original is in flight. The twin check
 * read the original's age on the wall clocks (the anchor's time, stored by the anchoring instance,
 * against this one's now): the test moves the anchor's time back by the step, which is what a check
 * made after a step forward of the instance's clock (NTP, a resumed VM) reads, or one on an instance
 * whose clock runs that far ahead. The age is now read on Redis's clock, from the anchor's expiry.
 */
class TwinClockStepIT {
  private static final long PROVIDER_MS = 3_000;
  private static final long CLOCK_STEP_MS = 120_000;
  private static TestGateway gateway;
  private static Http http;
  private static Redis redis;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start(Map.of("IDEMGATE_DUPLICATE_PAYLOAD_POLICY", "reject",
        "IDEMGATE_SIMULATOR_SLOW_MS", String.valueOf(PROVIDER_MS)));
    http = new Http();
    redis = Redis.createClient(http.vertx(), TestGateway.redisUrl());
  }

  @AfterAll
  static void stop() {
    Http.await(redis.close());
    http.close();
    gateway.close();
  }

  @Test
  @DisplayName("a twin of an original still at the acquirer is refused even when the wall clock stepped forward "
      + "two minutes since the original was checked")
  void inFlightOriginalAfterAClockStepForward() {
    JsonObject body = Orders.payment(4100, "tok_slow");
    String k1 = Http.newKey();
    String k2 = Http.newKey();
    Future<Reply> original = http.payAsync(gateway.apiPort(), TestGateway.KEY_A, k1, body.encode(), Map.of());

    String anchorKey = TwinDetector.redisKey(TestGateway.MERCHANT_A,
        PaymentTwins.fingerprint(List.of("amount", "currency", "source", "merchant_reference"),
            new dev.idemgate.payment.PaymentRequest(4100, "EUR", "tok_slow", body.getString("merchant_reference"), null, null)));
    String k1Hash = PaymentTwins.keyHash(TestGateway.MERCHANT_A, new IdempotencyKey(k1));
    Waits.eventually(Duration.ofSeconds(2), () -> {
      Response anchor = Http.await(redis.send(Request.cmd(Command.GET).arg(anchorKey)));
      return anchor != null && anchor.toString().startsWith(k1Hash + "|");
    }, "the original's anchor");
    String anchor = Http.await(redis.send(Request.cmd(Command.GET).arg(anchorKey))).toString();
    long at = Long.parseLong(anchor.substring(anchor.indexOf('|') + 1));
    Http.await(redis.send(Request.cmd(Command.SET).arg(anchorKey).arg(k1Hash + "|" + (at - CLOCK_STEP_MS))
        .arg("KEEPTTL")));

    Reply twin = Http.await(http.payAsync(gateway.apiPort(), TestGateway.KEY_A, k2, body.encode(), Map.of()));
    Reply first = Http.await(original);
    assertThat(first.status()).isEqualTo(201);
    assertThat(twin.status()).as("the twin of a payment the acquirer is still charging").isEqualTo(409);
  }
}
