package dev.idemgate.provider;

/**
 * One charge as sent to a provider. {@code providerKey} makes the provider deduplicate too;
 * {@code reference} is the gateway's payment id. {@code source} is a payment token, never card data.
 */
public record ChargeRequest(String providerKey, long amount, String currency, String source, String reference) {}
