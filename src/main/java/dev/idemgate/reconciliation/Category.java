package dev.idemgate.reconciliation;

/**
 * What a discrepancy is (DESIGN §6), with the remediation a finance team takes and how severe it is.
 * Severity is one factor of the priority score; the others are the money at stake and the age.
 */
public enum Category {
  /** One payment settled more than once: the customer paid twice. */
  DUPLICATE_CHARGE(Remediation.REFUND_DUPLICATE, 1.0),
  /** Settled at the provider, no ledger payment: money taken that the books do not know. */
  ORPHAN_AT_PROVIDER(Remediation.REFUND_OR_RECORD_ORPHAN, 0.9),
  /** The ledger says declined or pending and the provider settled, or the ledger says succeeded and the provider reversed. */
  STATUS_MISMATCH(Remediation.CORRECT_LEDGER_STATUS, 0.8),
  /** Both sides exist in the same currency with different amounts. */
  AMOUNT_MISMATCH(Remediation.RAISE_WITH_PROVIDER, 0.7),
  /** Both sides exist in different currencies. */
  CURRENCY_MISMATCH(Remediation.RAISE_WITH_PROVIDER, 0.7),
  /** The ledger succeeded, nothing settled past the settlement lag: money expected, not received. */
  MISSING_IN_SETTLEMENT(Remediation.REQUERY_PROVIDER, 0.5),
  /** The ledger row is still PROCESSING or PENDING past its lease. */
  STUCK_IN_LEDGER(Remediation.RESOLVE_STUCK, 0.6);

  /** The suggested action for each category. */
  public enum Remediation {
    REFUND_DUPLICATE, REFUND_OR_RECORD_ORPHAN, CORRECT_LEDGER_STATUS, RAISE_WITH_PROVIDER, REQUERY_PROVIDER, RESOLVE_STUCK
  }

  private final Remediation remediation;
  private final double severity;

  Category(Remediation remediation, double severity) {
    this.remediation = remediation;
    this.severity = severity;
  }

  public Remediation remediation() {
    return remediation;
  }

  /** Between 0 and 1: how bad one unit of money in this category is. */
  public double severity() {
    return severity;
  }
}
