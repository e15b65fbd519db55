package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.auth.MerchantKeys;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.ReplayCache;
import dev.idemgate.idempotency.SharedIdempotencyStore;
import dev.idemgate.observability.GatewayMetrics;
import dev.idemgate.observability.Tracing;
import dev.idemgate.ratelimit.MerchantRateLimiter;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.opentelemetry.api.OpenTelemetry;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The API verticles of a process share one idempotency store, which lives on the first one's
 * event loop and pool. Here the two verticles listen on ports of their own, so the test decides
 * which one has the payment in flight: the other one, the store's host, is stopped first.
 */
class SharedStoreDrainIT {

  @Test
  @DisplayName("stopping the verticle that hosts the shared store leaves another verticle's in-flight payment to complete (201, in the ledger)")
  void hostOutlivesTheOtherVerticlesPayments() throws Exception {
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_SLOW_MS", "1500"));
         Http http = new Http()) {
      Vertx vertx = gateway.gateway().vertx();
      SharedIdempotencyStore shared = new SharedIdempotencyStore();
      GatewayMetrics metrics = new GatewayMetrics(new SimpleMeterRegistry(), new Tracing(OpenTelemetry.noop()));
      ReplayCache replays = new ReplayCache(100);
      GatewayConfig hostConfig = TestGateway.config(Map.of());
      GatewayConfig memberConfig = TestGateway.config(Map.of());
      String host = await(vertx.deployVerticle(new ApiVerticle(hostConfig, metrics, replays, shared, MerchantKeys.load(hostConfig),
          new MerchantRateLimiter(hostConfig::rateLimitFor), new DrainTally())));
      String member = await(vertx.deployVerticle(new ApiVerticle(memberConfig, metrics, replays, shared, MerchantKeys.load(memberConfig),
          new MerchantRateLimiter(memberConfig::rateLimitFor), new DrainTally())));

      String key = Http.newKey();
      Future<Http.Reply> inFlight = http.payAsync(memberConfig.httpPort(), TestGateway.KEY_A, key,
          Http.payment(4_321, "tok_slow").encode(), Map.of());
      Thread.sleep(400); // claimed, now at the provider
      Future<String> hostStopped = vertx.undeploy(host).map("stopped");

      Http.Reply reply = Http.await(inFlight);
      assertThat(reply.status()).as(reply.body()).isEqualTo(201);
      assertThat(hostStopped.isComplete()).as("the host waits for every member to leave").isFalse();

      await(vertx.undeploy(member));
      assertThat(await(hostStopped)).isEqualTo("stopped");
      Http.Reply stored = http.get(gateway.apiPort(), "/v1/payments/" + reply.json().getString("id"), TestGateway.KEY_A);
      assertThat(stored.status()).isEqualTo(200);
      assertThat(stored.json().getLong("amount")).isEqualTo(4_321);
    }
  }

  private static <T> T await(Future<T> future) throws Exception {
    return future.toCompletionStage().toCompletableFuture().get(15, TimeUnit.SECONDS);
  }
}
