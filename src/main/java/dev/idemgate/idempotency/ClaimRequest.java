package dev.idemgate.idempotency;

import io.vertx.core.json.JsonObject;
import java.time.Instant;

/** Everything the claim row keeps, so that recovery can finish the payment without the request. */
public record ClaimRequest(
    String merchantId,
    IdempotencyKey key,
    String fingerprint,
    String paymentId,
    long amount,
    String currency,
    String merchantReference,
    String description,
    JsonObject metadata,
    Instant createdAt) {}
