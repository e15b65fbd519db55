package dev.idemgate.payment;

import dev.idemgate.idempotency.StoredResponse;

/** What {@code POST /pay} ends in; the HTTP layer turns each into its status and headers. */
public sealed interface PayOutcome {
  /**
   * First answer of this request's payment (201, 402 or 202), as stored for replay: its own, or the
   * one recovery stored when it settled the payment before this request's answer was written.
   * {@code retryAfterSeconds}: for a 202, when a retry may get the final answer
   * ({@link PendingRetryAfter}); 0 for a final answer.
   */
  record Fresh(StoredResponse response, int retryAfterSeconds) implements PayOutcome {
    /** A final answer (201 or 402). */
    Fresh(StoredResponse response) {
      this(response, 0);
    }
  }

  /** A stored answer replayed byte for byte; {@code retryAfterSeconds} as for {@link Fresh}. */
  record Replayed(StoredResponse response, int retryAfterSeconds) implements PayOutcome {
    /** A final answer (201 or 402). */
    Replayed(StoredResponse response) {
      this(response, 0);
    }
  }

  /**
   * A twin is in flight: 409 idempotency_key_in_use, retry after this many seconds.
   * {@code awaitingRecovery}: the claim is older than a live holder takes, so its holder seems gone
   * and the answer comes once recovery settles the record ({@link InFlightRetryAfter}).
   */
  record InFlight(int retryAfterSeconds, boolean awaitingRecovery) implements PayOutcome {}

  /** Same key, different payload (held under {@code heldFingerprint}): 422 idempotency_key_reused. */
  record KeyReused(String heldFingerprint) implements PayOutcome {}

  /**
   * The provider definitely did not charge: 502 provider_unavailable. The key is released, or, when
   * PostgreSQL did not take the release, stays held until recovery frees it. {@code retryAfterSeconds}
   * says when a retry can expect more than this answer: for a held key, when recovery will have freed
   * it (or later, when the provider said so); for a released one, when this instance sends charges
   * to the provider again (its circuit breaker open) or the provider said it takes them again (its
   * own Retry-After), the later of the two, or 0 when nothing says.
   */
  record ProviderUnavailable(boolean keyReleased, int retryAfterSeconds) implements PayOutcome {}

  /** A {@link ClaimGuard} refused the new payment before it was claimed; nothing was charged. */
  record Refused(Object reason) implements PayOutcome {}

  /** PostgreSQL cannot be used; nothing was charged: 503 store_unavailable. */
  record StoreDown(int retryAfterSeconds) implements PayOutcome {}

  /**
   * The key was in flight and this request waited up to {@code waitSeconds} for its twin
   * ({@code Prefer: wait=N}, N capped): {@code outcome} is what it came to after, the twin's answer
   * replayed, this request's own attempt (the twin's key was freed), or {@link InFlight} when the
   * wait ran out. It waited once it found the twin in flight and looked again after subscribing to
   * its completion, even when that second look found the twin done. The HTTP layer answers
   * {@code outcome} with {@code Preference-Applied: wait=N}; no other outcome applied the preference.
   */
  record Waited(PayOutcome outcome, int waitSeconds) implements PayOutcome {
    public Waited {
      if (outcome instanceof Waited) {
        throw new IllegalArgumentException("a request waits once");
      }
    }
  }
}
