package dev.idemgate.provider;

/**
 * The only four things a provider call can mean to the gateway. Every connector maps its answers
 * to these in one place; the three failure kinds never mix.
 */
public sealed interface ProviderOutcome {
  /** The card was charged. Terminal. */
  record Succeeded(String providerReference) implements ProviderOutcome {}

  /** The provider said no. Terminal, stored and replayed like a success. */
  record Declined(String providerReference, String declineCode) implements ProviderOutcome {}

  /** Definitely not charged (refused before acceptance): the claim is released and a retry is safe. */
  record NotAttempted(String reason) implements ProviderOutcome {}

  /**
   * May have been charged (timeout or reset after sending): never blindly retried; recovery asks.
   * {@code acquirerAnswered} is true when the acquirer itself answered an inquiry that it cannot
   * tell (it has the request but no charge yet, or no longer remembers the key), false when no
   * answer came (a timeout, no connection, an open circuit, an error status, an answer that proves
   * nothing): then a charge the acquirer made could not have been found.
   */
  record Unknown(String reason, boolean acquirerAnswered) implements ProviderOutcome {
    /** No answer from the acquirer. */
    public Unknown(String reason) {
      this(reason, false);
    }
  }
}
