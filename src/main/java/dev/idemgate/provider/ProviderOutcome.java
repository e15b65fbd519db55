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

  /**
   * Definitely not charged (refused before acceptance): the claim is released and a retry is safe.
   * {@code retryAfterSeconds}, when above 0, is how long a retry would be refused the same way (this
   * instance's circuit breaker, open, or the acquirer's own Retry-After on its refusal); 0 when nothing says.
   */
  record NotAttempted(String reason, int retryAfterSeconds) implements ProviderOutcome {
    public NotAttempted(String reason) {
      this(reason, 0);
    }
  }

  /**
   * May have been charged (timeout or reset after sending): never blindly retried; recovery asks.
   * {@code heard} says what, if anything, the acquirer itself answered (see {@link Heard}).
   * {@code retryAfterSeconds}, when above 0, is the acquirer's own Retry-After on an inquiry it
   * refused (429 or 503): how long it asks not to be asked again; 0 when nothing says.
   */
  record Unknown(String reason, Heard heard, int retryAfterSeconds) implements ProviderOutcome {
    /** No answer from the acquirer. */
    public Unknown(String reason) {
      this(reason, Heard.NO_ANSWER);
    }

    public Unknown(String reason, Heard heard) {
      this(reason, heard, 0);
    }
  }

  /** What an unknown outcome heard from the acquirer: an operator's verdict depends on it. */
  enum Heard {
    /**
     * Nothing it said (a timeout, no connection, an open circuit, an error status, an answer that
     * proves nothing): a charge the acquirer made could not have been found.
     */
    NO_ANSWER,
    /** The acquirer answered that it does not know the key (it no longer remembers it). */
    CANNOT_TELL,
    /**
     * The acquirer answered that it has the request or its charge, in a form that does not settle
     * it (still processing, or a charge id the ledger cannot hold): it may well be charged.
     */
    HAS_IT,
    /**
     * The acquirer answered with a final charge under the key (succeeded or declined) of another
     * amount or currency than the payment's: a partial approval, or an earlier charge it returns for
     * the provider key. It holds a charge under the key, so the key must never be freed, but that
     * charge is not the payment as asked: an operator may close the payment as declined (after
     * reversing that charge at the acquirer), never as succeeded (RecoveryVerticle#settle).
     */
    OTHER_CHARGE
  }
}
