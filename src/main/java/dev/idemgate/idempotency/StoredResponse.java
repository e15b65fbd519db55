package dev.idemgate.idempotency;

import java.time.Instant;

/**
 * A response kept for replay: its status and exact body bytes, the payment it is about, and when
 * the key stops being replayed.
 *
 * <p>{@code expiresAt} is on the clock of the gateway that answers (the {@code Idempotency-Key-Expires}
 * header, next to that gateway's {@code Date}), never PostgreSQL's: a new payment's is the gateway's
 * now plus the key TTL, taken before the completion statement, whose PostgreSQL {@code now()} plus
 * the same TTL is the key's real expiry ({@link Completion}); one read back from PostgreSQL is the
 * time it has left added to the gateway's now taken before the read ({@code IdempotencyStore}). So
 * PostgreSQL never frees the key before (in real time) the moment given, whichever clock is ahead.
 * This gateway's Redis TTL and replay cache count down the time left from it on the same clock. A
 * replay from Redis carries the moment of the instance that wrote it (README, known limits).
 */
public record StoredResponse(int status, String body, String paymentId, Instant expiresAt) {}
