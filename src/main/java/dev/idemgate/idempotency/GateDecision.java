package dev.idemgate.idempotency;

/** What the Redis gate said about a key in its one atomic step. */
public sealed interface GateDecision {
  /** Nothing was there: this request holds the Redis claim, identified by {@code token}. */
  record Claimed(String token) implements GateDecision {}

  /** A twin with the same payload is being processed. */
  record InFlight() implements GateDecision {}

  /** The key is completed with the same payload: replay this. */
  record Replay(StoredResponse response) implements GateDecision {}

  /** The key was used with another payload, whose fingerprint is {@code heldFingerprint}. */
  record Mismatch(String heldFingerprint) implements GateDecision {}

  /** Redis cannot decide (the key is pending, or Redis is unreachable): PostgreSQL decides alone. */
  record AskStore() implements GateDecision {}
}
