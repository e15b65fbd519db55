package dev.idemgate.provider;

/**
 * What recovery asks a provider about: the charge under {@code providerKey}, and the amount and
 * currency the payment asked for, so that a charge of another amount or currency found under the key
 * is not taken for the payment's own.
 */
public record ChargeInquiry(String providerKey, long amount, String currency) {}
