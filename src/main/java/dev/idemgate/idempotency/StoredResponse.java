package dev.idemgate.idempotency;

import java.time.Instant;

/**
 * A response kept for replay: its status and exact body bytes, the payment it is about, and when
 * the key stops being replayed.
 *
 * <p>{@code expiresAt} (the {@code Idempotency-Key-Expires} header) is on the clock of the gateway
 * that answered first, taken before its completion statement; PostgreSQL keeps the moment as told
 * for replays ({@code expires_at}) and frees the key only once its own {@code now()} plus the same
 * TTL, counted in that later statement, has passed too ({@code frees_at}, {@link Completion}), so
 * never before (in real time) the moment told, whichever clock is ahead. Redis and the replay cache count down the time left from it on
 * the answering gateway's clock; a replay from Redis on another instance whose clock is behind
 * reads that moment against its own Date (README, known limits).
 */
public record StoredResponse(int status, String body, String paymentId, Instant expiresAt) {}
