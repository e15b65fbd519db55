package dev.idemgate.payment;

import dev.idemgate.config.GatewayConfig;
import java.time.Duration;

/**
 * The {@code Retry-After} of a 202 pending: when a retry with the key may get the final answer. A
 * pending payment changes only when recovery asks the provider about it, at its next inquiry
 * ({@code recovery_backoff}'s first step after the 202, then its later ones, {@link
 * GatewayConfig#nextInquiryAfter}); the pass that takes it comes within a {@code recovery_interval}
 * of that moment, and a second covers the inquiry and the statement that records it, as for a 409
 * ({@link GatewayConfig#settledAfterLease()}). Asked sooner, the retry gets the same 202. Only told:
 * an operator's verdict can settle the payment before, and a provider that still cannot say leaves
 * it pending past it (the next 202 says when).
 */
final class PendingRetryAfter {
  /** The outcome is known and being written (or recovery is asking now): a second. */
  static final int SETTLING = 1;

  private final long recoveryPassMs;

  PendingRetryAfter(GatewayConfig config) {
    this.recoveryPassMs = config.recoveryInterval().toMillis() + 1_000;
  }

  /**
   * Whole seconds, rounded up, until recovery will have asked about a payment whose next inquiry is
   * due in {@code nextInquiryIn} (negative, or zero, when due already: recovery is behind, and its
   * next pass is the next chance); at least 1.
   */
  int untilAsked(Duration nextInquiryIn) {
    long ms = Math.max(0, nextInquiryIn.toMillis()) + recoveryPassMs;
    return (int) Math.min(Integer.MAX_VALUE, Math.max(1, (ms + 999) / 1000));
  }
}
