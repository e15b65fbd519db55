package dev.idemgate.idempotency;

import io.vertx.core.json.JsonObject;

/**
 * Everything the claim row keeps, so that recovery can finish the payment without the request.
 * Not its creation time: PostgreSQL stamps that ({@code IdempotencyStore#CLAIM}).
 */
public record ClaimRequest(
    String merchantId,
    IdempotencyKey key,
    String fingerprint,
    String paymentId,
    long amount,
    String currency,
    String merchantReference,
    String description,
    JsonObject metadata) {}
