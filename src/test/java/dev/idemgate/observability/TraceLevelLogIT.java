package dev.idemgate.observability;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.GatewayProcess;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.http.HttpMethod;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * {@code log_level: TRACE} is a documented setting, and it reaches the libraries' loggers too: the
 * packaged jar, with its own logback.xml, must still keep card numbers and query strings out of the log.
 */
class TraceLevelLogIT {
  private static final String CARD = "4242424242424242";
  private static final String CARD_AS_KEY = "4111111111111111";

  @Test
  @DisplayName("at log_level TRACE, a query string (a card number in /pay's, a key in an admin lookup's) never reaches the log")
  void queriesStayOutOfTheLogAtTrace() throws Exception {
    try (GatewayProcess gateway = GatewayProcess.start(Map.of("IDEMGATE_LOG_LEVEL", "TRACE")).awaitReady();
         Http http = new Http()) {
      Http.Reply paid = http.send(HttpMethod.POST, gateway.apiPort(), "/pay?card=" + CARD, Map.of(
              "Authorization", "Bearer " + TestGateway.KEY_A, "Idempotency-Key", Http.newKey(),
              "Content-Type", "application/json"),
          Http.payment(1999, "tok_visa").toBuffer());
      assertThat(paid.status()).as(paid.body()).isEqualTo(201);
      Http.Reply lookedUp = http.get(gateway.managementPort(),
          "/admin/simulator/charges?merchant=" + TestGateway.MERCHANT_A + "&key=" + CARD_AS_KEY, TestGateway.ADMIN_TOKEN);
      assertThat(lookedUp.status()).as(lookedUp.body()).isEqualTo(200);

      // The admin request's access line is the last of the two to be written.
      Waits.eventually(Duration.ofSeconds(10), () -> log(gateway).contains("\"path\":\"/admin/simulator/charges\""),
          "the admin request's access line");
      String log = log(gateway);
      assertThat(log).as("TRACE is on").contains("\"level\":\"TRACE\"");
      assertThat(log).doesNotContain(CARD).doesNotContain(CARD_AS_KEY);
    }
  }

  private static String log(GatewayProcess gateway) {
    try {
      return Files.readString(gateway.logFile());
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
