package dev.idemgate.reconciliation;

import java.time.Instant;
import java.util.Optional;

/**
 * What to reconcile: a settlement file and the slice of the ledger it is compared with.
 *
 * @param settlementName the file's name, shown in reports
 * @param provider selects the column mapping and limits the ledger to {@code payments.provider}
 * @param from start of the ledger window (inclusive), and of the payments expected in the file; without it,
 *     the file's first settlement minus the lag, and payments are expected from the first settlement
 * @param to end of the ledger window (exclusive); without it, the file's last settlement plus the lag
 * @param merchantPrefix only merchants whose id starts with this, on both sides
 * @param asOf the run's "now": ages and expired leases are measured from it
 */
public record ReconciliationRequest(
    String settlementName,
    Source source,
    Optional<String> provider,
    Optional<Instant> from,
    Optional<Instant> to,
    Optional<String> merchantPrefix,
    Instant asOf) {

  /** Where a run was started from. */
  public enum Source {
    CLI, API;

    String column() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }
}
