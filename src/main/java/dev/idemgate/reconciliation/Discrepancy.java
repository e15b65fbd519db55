package dev.idemgate.reconciliation;

import io.vertx.core.json.JsonObject;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.Currency;

/**
 * One finding of a run, as stored: what it is, what to do (as stored: an orphan refund or
 * chargeback is not to be refunded, unlike its category's usual action), the money at stake and the
 * evidence from both sides, and, once resolved, when and with what note. Ledger or settlement fields
 * are null where that side does not exist.
 */
public record Discrepancy(
    long id,
    int priority,
    double score,
    Category category,
    Category.Remediation remediation,
    String status,
    long valueMinor,
    String valueCurrency,
    String paymentId,
    String merchantId,
    String settlementId,
    Long settlementLine,
    String providerReference,
    String providerKey,
    Long ledgerAmount,
    String ledgerCurrency,
    String ledgerStatus,
    Long settlementAmount,
    String settlementCurrency,
    String settlementStatus,
    String matchMethod,
    Double confidence,
    Instant occurredAt,
    JsonObject evidence,
    Instant resolvedAt,
    String resolutionNote) {

  /** Minor units as a decimal amount in the currency's major unit, e.g. 1999 EUR as 19.99. */
  public static String major(long minor, String currency) {
    int digits;
    try {
      digits = Math.max(0, Currency.getInstance(currency).getDefaultFractionDigits());
    } catch (IllegalArgumentException e) {
      digits = 2;
    }
    return BigDecimal.valueOf(minor, digits).toPlainString();
  }

  public double ageDays(Instant asOf) {
    return Math.max(0, Duration.between(occurredAt, asOf).toMinutes() / 1440.0);
  }

  public JsonObject toJson(Instant asOf) {
    return new JsonObject()
        .put("id", id)
        .put("priority", priority)
        .put("category", category.name())
        .put("remediation", remediation.name())
        .put("status", status)
        .put("score", Math.round(score * 1000) / 1000.0)
        .put("value", new JsonObject().put("amount", valueMinor).put("currency", valueCurrency)
            .put("major", major(valueMinor, valueCurrency)))
        .put("payment_id", paymentId)
        .put("merchant_id", merchantId)
        .put("settlement_id", settlementId)
        .put("settlement_line", settlementLine)
        .put("provider_reference", providerReference)
        .put("provider_key", providerKey)
        .put("ledger", ledgerAmount == null ? null : new JsonObject().put("amount", ledgerAmount)
            .put("currency", ledgerCurrency).put("status", ledgerStatus))
        .put("settlement", settlementAmount == null ? null : new JsonObject().put("amount", settlementAmount)
            .put("currency", settlementCurrency).put("status", settlementStatus))
        .put("match_method", matchMethod)
        .put("confidence", confidence)
        .put("occurred_at", occurredAt.toString())
        .put("age_days", Math.round(ageDays(asOf) * 10) / 10.0)
        .put("evidence", evidence)
        .put("resolution", resolution());
  }

  /**
   * How it was resolved, when it is: when and with what note (one carried over from an earlier run
   * reads {@code resolved in run <id>: <note>}, at that run's time); null while it is open.
   */
  public JsonObject resolution() {
    return "resolved".equals(status) ? new JsonObject()
        .put("resolved_at", resolvedAt == null ? null : resolvedAt.toString()).put("note", resolutionNote) : null;
  }
}
