package dev.idemgate.bench;

import io.vertx.core.Future;

/** The gateway's ledger as the storm reads it: how many payments one client key ended up as. */
interface Ledger {
  /** Rows for this merchant's idempotency key, whatever provider key they were charged under. */
  Future<Long> rows(String merchant, String idempotencyKey);

  Future<Void> close();
}
