package dev.idemgate.provider;

import io.vertx.core.Future;
import io.vertx.core.json.JsonObject;

/** The default, in-process connector: a {@link SimulatedAcquirer} that deduplicates by provider key. */
public final class SimulatorProvider implements PaymentProvider {
  private final SimulatedAcquirer acquirer;

  public SimulatorProvider(SimulatedAcquirer acquirer) {
    this.acquirer = acquirer;
  }

  @Override
  public String name() {
    return "simulator";
  }

  @Override
  public Future<ProviderOutcome> charge(ChargeRequest request) {
    return acquirer.charge(request);
  }

  @Override
  public Future<ProviderOutcome> inquire(ChargeInquiry inquiry) {
    return acquirer.inquire(inquiry);
  }

  public JsonObject chargeLog(String providerKey) {
    return acquirer.chargeLog(providerKey);
  }
}
