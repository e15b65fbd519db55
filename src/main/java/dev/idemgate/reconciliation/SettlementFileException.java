package dev.idemgate.reconciliation;

/** A settlement file that cannot be reconciled at all (unreadable, not CSV, required columns missing); one line for the operator. */
public final class SettlementFileException extends RuntimeException {
  public SettlementFileException(String message) {
    super(message);
  }
}
