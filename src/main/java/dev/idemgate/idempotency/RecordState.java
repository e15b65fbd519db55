package dev.idemgate.idempotency;

/** The life of an idempotency record in PostgreSQL (DESIGN §1). */
public enum RecordState {
  /** Claimed; the lease is held by one gateway instance at one epoch. */
  PROCESSING,
  /** The provider's outcome is unknown; recovery is asking the provider. */
  PENDING,
  /** A terminal response (succeeded or declined) is stored and replayed. */
  COMPLETED
}
