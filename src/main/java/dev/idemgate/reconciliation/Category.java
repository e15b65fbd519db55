package dev.idemgate.reconciliation;

/**
 * What a discrepancy is (DESIGN §6), with the remediation a finance team takes and how severe it is.
 * Severity is one factor of the priority score; the others are the money at stake and the age.
 */
public enum Category {
  /**
   * One payment settled more than once: the customer paid twice. A refund or chargeback of the same
   * amount in the file nets an extra settlement; only what is left over is reported. The first
   * settlement may be in an earlier file, as an earlier run recorded it; when that evidence is not
   * certain the remediation is {@link Remediation#REVIEW_DUPLICATE}.
   */
  DUPLICATE_CHARGE(Remediation.REFUND_DUPLICATE, 1.0),
  /**
   * A settlement row that matches no ledger payment. Settled: money taken that the books do not know
   * ({@link Remediation#REFUND_OR_RECORD_ORPHAN}), or, when ledger payments could be it, a match for
   * a person to make ({@link Remediation#REVIEW_CANDIDATE}). A refund or chargeback: money already
   * given back for a payment the books do not know ({@link Remediation#FIND_REVERSED_PAYMENT}), never
   * to be refunded.
   */
  ORPHAN_AT_PROVIDER(Remediation.REFUND_OR_RECORD_ORPHAN, 0.9),
  /**
   * The ledger says declined and the provider settled, or the ledger says succeeded and the provider
   * reversed. A pending payment the provider settled is STUCK_IN_LEDGER, with the settlement attached.
   */
  STATUS_MISMATCH(Remediation.CORRECT_LEDGER_STATUS, 0.8),
  /** Both sides exist in the same currency with different amounts. */
  AMOUNT_MISMATCH(Remediation.RAISE_WITH_PROVIDER, 0.7),
  /** Both sides exist in different currencies. */
  CURRENCY_MISMATCH(Remediation.RAISE_WITH_PROVIDER, 0.7),
  /** The ledger succeeded, nothing settled past the settlement lag: money expected, not received. */
  MISSING_IN_SETTLEMENT(Remediation.REQUERY_PROVIDER, 0.5),
  /**
   * The ledger does not know the outcome: the payment is pending (whatever recovery writes to its
   * record while it asks), or its claim is still PROCESSING past its lease or taken over by recovery.
   */
  STUCK_IN_LEDGER(Remediation.RESOLVE_STUCK, 0.6);

  /**
   * The suggested action: one per category, except an orphan refund or chargeback, or one with
   * candidates, and a duplicate across files whose evidence is not certain (above).
   */
  public enum Remediation {
    REFUND_DUPLICATE, REFUND_OR_RECORD_ORPHAN, CORRECT_LEDGER_STATUS, RAISE_WITH_PROVIDER, REQUERY_PROVIDER, RESOLVE_STUCK,
    /**
     * The provider gave money back (refund, chargeback) for a payment the ledger does not know: find
     * the payment (another system, a ledger row lost) and record the reversal. Refunding it again
     * would pay the customer twice.
     */
    FIND_REVERSED_PAYMENT,
    /**
     * A settled row that no payment matched with certainty, although the ledger holds one or more
     * that could be it (named in the evidence): check them, and record the match when it is one.
     * Refunding would pay back a customer charged once.
     */
    REVIEW_CANDIDATE,
    /**
     * A settlement of a payment an earlier file settled too, where the evidence of a second charge is
     * not certain: the earlier row has the same amount, currency and settled_at under another
     * settlement_id (the same settlement renumbered?), either match was not by exact reference or
     * provider key, or an earlier file refunded or charged the payment back. Check with the provider
     * before refunding: a refund of a settlement seen twice pays back a customer charged once.
     */
    REVIEW_DUPLICATE
  }

  private final Remediation remediation;
  private final double severity;

  Category(Remediation remediation, double severity) {
    this.remediation = remediation;
    this.severity = severity;
  }

  /** The action for a discrepancy of this category (an orphan reversal's is {@link Remediation#FIND_REVERSED_PAYMENT}). */
  public Remediation remediation() {
    return remediation;
  }

  /** Between 0 and 1: how bad one unit of money in this category is. */
  public double severity() {
    return severity;
  }
}
