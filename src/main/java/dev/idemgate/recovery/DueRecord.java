package dev.idemgate.recovery;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RecordState;
import java.time.Instant;

/**
 * A record recovery has taken over: its epoch is already bumped, so the instance that held it
 * before (and any other recovery pass) is fenced out until this pass is done with it.
 */
record DueRecord(
    String merchantId,
    IdempotencyKey key,
    String fingerprint,
    RecordState state,
    int epoch,
    String paymentId,
    String providerKey,
    long amount,
    String currency,
    String merchantReference,
    Instant createdAt,
    int inquiryAttempts) {}
