package dev.idemgate.reconciliation;

import java.time.Instant;

/**
 * One valid line of a settlement file, in canonical form.
 *
 * @param line physical line number where the record starts (the header is line 1)
 * @param providerReference as written, or null
 * @param referenceKey the reference without case or punctuation, or null
 * @param providerKey lower-case hex, or null
 * @param merchantId or null when the file has no merchant column
 * @param amount minor units, positive
 * @param status settled, refunded or chargeback
 * @param settledAt the instant, or for a bare date the start of that day (UTC)
 * @param wholeDay settled_at was a bare date: the settlement happened some time that day
 */
public record SettlementRow(
    long line,
    String settlementId,
    String providerReference,
    String referenceKey,
    String providerKey,
    String merchantId,
    long amount,
    String currency,
    String status,
    Instant settledAt,
    boolean wholeDay) {}
