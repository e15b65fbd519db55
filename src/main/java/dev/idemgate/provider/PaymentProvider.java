package dev.idemgate.provider;

import io.vertx.core.Future;

/** A payment provider connector. Implementations never block and never fail their Future for a provider answer. */
public interface PaymentProvider {
  /** Name stored on the ledger row ({@code payments.provider}). */
  String name();

  /** Charges once. A failed Future is read by the caller as {@link ProviderOutcome.Unknown}. */
  Future<ProviderOutcome> charge(ChargeRequest request);

  /**
   * What the provider knows of a charge by provider key: its terminal outcome, or
   * {@link ProviderOutcome.NotAttempted} when it never saw the charge. A charge of another amount or
   * currency than the inquiry's is not the payment's: {@link ProviderOutcome.Unknown}.
   */
  Future<ProviderOutcome> inquire(ChargeInquiry inquiry);
}
