package dev.idemgate.idempotency;

import java.time.Instant;

/**
 * A response kept for replay: its status and exact body bytes, the payment it is about, and when
 * the key stops being replayed.
 */
public record StoredResponse(int status, String body, String paymentId, Instant expiresAt) {}
