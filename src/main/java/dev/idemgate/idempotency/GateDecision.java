package dev.idemgate.idempotency;

import java.time.Duration;

/** What the Redis gate said about a key in its one atomic step. */
public sealed interface GateDecision {
  /** Nothing was there: this request holds the Redis claim, identified by {@code token}. */
  record Claimed(String token) implements GateDecision {}

  /**
   * A twin with the same payload is being processed, claimed {@code age} ago (on the claimer's
   * clock, read on this one's); null when its claim does not say (one an earlier version wrote).
   */
  record InFlight(Duration age) implements GateDecision {}

  /** The key is completed with the same payload: replay this. */
  record Replay(StoredResponse response) implements GateDecision {}

  /** The key was used with another payload, whose fingerprint is {@code heldFingerprint}. */
  record Mismatch(String heldFingerprint) implements GateDecision {}

  /** Redis cannot decide (the key is pending, or Redis is unreachable): PostgreSQL decides alone. */
  record AskStore() implements GateDecision {}
}
