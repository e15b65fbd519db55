package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * An acquirer that refuses a charge before accepting it (429, or 503 with its error body) and says
 * when to come back: the gateway's 502 carries that {@code Retry-After}, bounded, and nothing else of
 * the acquirer's headers. Each payment's {@code source} picks the acquirer's answer. Four refusals
 * in all, under the five that open the circuit breaker, whose own Retry-After would take over.
 */
@DisplayName("an acquirer's Retry-After on a refusal")
class AcquirerRetryAfterIT {
  private static final DateTimeFormatter IMF_FIXDATE =
      DateTimeFormatter.ofPattern("EEE, dd MMM yyyy HH:mm:ss 'GMT'", Locale.ENGLISH).withZone(ZoneOffset.UTC);

  private static Vertx vertx;
  private static HttpServer acquirer;
  private static TestGateway gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
    acquirer = Http.await(vertx.createHttpServer().requestHandler(request -> request.body().onSuccess(body -> {
      var response = request.response()
          .putHeader("X-Acquirer-Trace", "trace-secret-1")
          .putHeader("Set-Cookie", "acq=1")
          .putHeader("Content-Type", "application/json");
      Instant now = Instant.now();
      switch (new JsonObject(body).getString("source")) {
        case "tok_limited_delta" -> response.setStatusCode(429).putHeader("Retry-After", "120").end("{}");
        case "tok_down_until" -> response.setStatusCode(503)
            .putHeader("Date", IMF_FIXDATE.format(now))
            .putHeader("Retry-After", IMF_FIXDATE.format(now.plusSeconds(40)))
            .end("{\"error\":\"acquirer_unavailable\"}");
        case "tok_limited_long" -> response.setStatusCode(429).putHeader("Retry-After", "86400").end("{}");
        case "tok_limited_garbage" -> response.setStatusCode(429).putHeader("Retry-After", "soon").end("{}");
        // A charge id of its own for each charge: one the ledger holds already is left pending (ReusedChargeIdIT).
        default -> response.setStatusCode(200).end("{\"id\":\"ch_" + UUID.randomUUID() + "\",\"status\":\"succeeded\"}");
      }
    })).listen(0, "127.0.0.1"));
    // Recovery an hour apart: nothing here is left pending, and it stays out of other tests' records.
    gateway = TestGateway.start(Map.of("IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "http://127.0.0.1:" + acquirer.actualPort(),
        "IDEMGATE_PROVIDER_NAME", "retry-after-acquirer", "IDEMGATE_RECOVERY_INTERVAL", "1h"));
    http = new Http();
  }

  @AfterAll
  static void stop() {
    if (http != null) {
      http.close();
    }
    if (gateway != null) {
      gateway.close();
    }
    if (vertx != null) {
      Http.await(vertx.close());
    }
  }

  private static Http.Reply pay(String source) {
    return http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(1500, source));
  }

  @Test
  @DisplayName("a 429's delta-seconds and a 503's HTTP-date (read against the acquirer's Date) reach the 502; one over "
      + "300 s says 300; one that is no delay says nothing, as before; no other acquirer header reaches the client")
  void refusalsCarryTheAcquirersDelay() {
    Http.Reply limited = pay("tok_limited_delta");
    assertThat(limited.status()).isEqualTo(502);
    assertThat(limited.json().getString("code")).isEqualTo("provider_unavailable");
    assertThat(limited.header("Retry-After")).isEqualTo("120");
    assertThat(limited.header("X-Acquirer-Trace")).isNull();
    assertThat(limited.header("Set-Cookie")).isNull();
    assertThat(limited.body()).doesNotContain("trace-secret-1");

    Http.Reply down = pay("tok_down_until");
    assertThat(down.status()).isEqualTo(502);
    assertThat(down.header("Retry-After")).as("40 s after the acquirer's Date").isEqualTo("40");

    assertThat(pay("tok_limited_long").header("Retry-After")).as("bounded").isEqualTo("300");

    Http.Reply garbage = pay("tok_limited_garbage");
    assertThat(garbage.status()).isEqualTo(502);
    assertThat(garbage.header("Retry-After")).isNull();

    assertThat(pay("tok_visa").status()).as("the acquirer charges again").isEqualTo(201);
  }
}
