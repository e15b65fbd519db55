package dev.idemgate.payment;

import io.vertx.core.json.JsonObject;

/** A validated {@code POST /pay} body. {@code source} is a payment token; card data never gets this far. */
public record PaymentRequest(
    long amount,
    String currency,
    String source,
    String merchantReference,
    String description,
    JsonObject metadata) {}
