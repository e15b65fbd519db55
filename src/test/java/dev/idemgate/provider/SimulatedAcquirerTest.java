package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class SimulatedAcquirerTest {
  private Vertx vertx;
  private Context context;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
    context = vertx.getOrCreateContext();
  }

  @AfterEach
  void stop() {
    Http.await(vertx.close());
  }

  /** Runs {@code call} on the context's event loop, as the provider verticle would. */
  private <T> T onLoop(Supplier<Future<T>> call) {
    Promise<T> done = Promise.promise();
    context.runOnContext(v -> call.get().onComplete(done));
    return Http.await(done.future());
  }

  private static ChargeRequest visa(String key) {
    return new ChargeRequest(key, 1999, "EUR", "tok_visa", "pay_" + key);
  }

  @Test
  @DisplayName("only the last N provider keys are remembered; the full log says how many were forgotten")
  void remembersTheLastKeysOnly() {
    SimulatedAcquirer acquirer = new SimulatedAcquirer(vertx, 0, 0, true, 3);
    for (int i = 1; i <= 5; i++) {
      String key = "pk" + i;
      assertThat(onLoop(() -> acquirer.charge(visa(key)))).isInstanceOf(ProviderOutcome.Succeeded.class);
    }
    JsonObject all = acquirer.allCharges();
    assertThat(all.getLong("requests")).isEqualTo(5);
    assertThat(all.getLong("forgotten_keys")).isEqualTo(2);
    assertThat(all.getJsonArray("charges").stream().map(c -> ((JsonObject) c).getString("idempotency_key")))
        .containsExactly("pk3", "pk4", "pk5");
    assertThat(acquirer.chargeLog("pk1").getJsonArray("charges")).isEmpty();
  }

  @Test
  @DisplayName("after forgetting, an unknown key is 'unknown', never 'not attempted'; a remembered one keeps its outcome")
  void forgottenKeyIsUnknownNotReleased() {
    SimulatedAcquirer acquirer = new SimulatedAcquirer(vertx, 0, 0, true, 2);
    assertThat(onLoop(() -> acquirer.inquire(new ChargeInquiry("never-sent", 1999, "EUR")))).as("nothing forgotten yet")
        .isInstanceOf(ProviderOutcome.NotAttempted.class);
    for (int i = 1; i <= 3; i++) {
      String key = "pk" + i;
      onLoop(() -> acquirer.charge(visa(key)));
    }
    assertThat(onLoop(() -> acquirer.inquire(new ChargeInquiry("pk1", 1999, "EUR")))).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(onLoop(() -> acquirer.inquire(new ChargeInquiry("never-sent", 1999, "EUR")))).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(onLoop(() -> acquirer.inquire(new ChargeInquiry("pk3", 1999, "EUR")))).isInstanceOf(ProviderOutcome.Succeeded.class);
    // The standalone acquirer answers inquiries with its charge log: read as HttpProvider reads it.
    assertThat(HttpProvider.mapInquiry(200, acquirer.chargeLog("pk1").toBuffer(), new ChargeInquiry("pk1", 1999, "EUR")).outcome())
        .as("a forgotten key over HTTP").isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(HttpProvider.mapInquiry(200, acquirer.chargeLog("pk3").toBuffer(), new ChargeInquiry("pk3", 1999, "EUR")).outcome())
        .isInstanceOf(ProviderOutcome.Succeeded.class);
  }

  @Test
  @DisplayName("over HTTP, a key the acquirer never saw is 'never seen' only while it has forgotten nothing")
  void neverSeenOverHttpOnlyWhileNothingIsForgotten() {
    SimulatedAcquirer acquirer = new SimulatedAcquirer(vertx, 0, 0, true, 2);
    assertThat(HttpProvider.mapInquiry(200, acquirer.chargeLog("never-sent").toBuffer(), new ChargeInquiry("never-sent", 1999, "EUR")).outcome())
        .isInstanceOf(ProviderOutcome.NotAttempted.class);
  }

  @Test
  @DisplayName("a key's first charge, answered again for another amount or currency, is not the asking payment's: unknown")
  void otherAmountUnderTheKeyIsUnknown() {
    SimulatedAcquirer acquirer = new SimulatedAcquirer(vertx, 0, 0, true);
    assertThat(onLoop(() -> acquirer.charge(visa("pk1")))).isInstanceOf(ProviderOutcome.Succeeded.class);
    assertThat(onLoop(() -> acquirer.charge(new ChargeRequest("pk1", 5000, "EUR", "tok_visa", "pay_other"))))
        .isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(onLoop(() -> acquirer.inquire(new ChargeInquiry("pk1", 1999, "USD")))).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(onLoop(() -> acquirer.inquire(new ChargeInquiry("pk1", 1999, "EUR")))).isInstanceOf(ProviderOutcome.Succeeded.class);
  }

  @Test
  @DisplayName("a timeout on a delayed answer fires on the caller's event loop")
  void delayedAnswerBelongsToTheCallersLoop() {
    SimulatedAcquirer acquirer = new SimulatedAcquirer(vertx, 10_000, 0, true);
    Thread loop = onLoop(() -> Future.succeededFuture(Thread.currentThread()));
    Thread failedOn = onLoop(() -> acquirer.charge(visa("slow")).timeout(100, TimeUnit.MILLISECONDS)
        .transform(done -> Future.succeededFuture(done.failed() ? Thread.currentThread() : null)));
    assertThat(failedOn).as("the thread the timeout failure ran on").isSameAs(loop);
  }
}
