package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.ConfigLoader;
import dev.idemgate.config.GatewayConfig;
import io.vertx.core.Vertx;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** What the API and recovery read when the provider verticle does not answer on the event bus. */
class ProviderClientTest {
  private Vertx vertx;
  private ProviderClient client;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
    vertx.eventBus().registerCodec(new LocalCodec());
    GatewayConfig config = ConfigLoader.load(Optional.empty(), Map.of());
    client = new ProviderClient(vertx.eventBus(), config); // no ProviderVerticle deployed: nobody listens
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  @Test
  @DisplayName("a charge nobody received was not attempted: the key can be released")
  void chargeWithNobodyListeningWasNotAttempted() throws Exception {
    ProviderOutcome outcome = client.charge(new ChargeRequest("demo:k", 100, "EUR", "tok_visa", "pay_x"))
        .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    assertThat(outcome).isInstanceOf(ProviderOutcome.NotAttempted.class);
  }

  @Test
  @DisplayName("an inquiry nobody received says nothing about the charge: unknown, never 'not attempted' "
      + "(recovery would release a record whose charge is real while the gateway shuts down)")
  void inquiryWithNobodyListeningIsUnknown() throws Exception {
    ProviderOutcome outcome = client.inquire(new ChargeInquiry("demo:k", 1999, "EUR")).toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    assertThat(outcome).isInstanceOf(ProviderOutcome.Unknown.class);
  }
}
