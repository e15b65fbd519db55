package dev.idemgate.idempotency;

import dev.idemgate.storage.GroupCommit;

/** PostgreSQL did not answer in time or failed; the request gets 503 and nothing is charged. */
public final class StoreUnavailable extends RuntimeException {
  private final String operation;

  public StoreUnavailable(String operation, Throwable cause) {
    super("store " + operation + " failed: " + cause, cause);
    this.operation = operation;
  }

  /** The statement that failed, by name: claim, read, complete, held, release, find payment; queue when none was sent. */
  public String operation() {
    return operation;
  }

  /** False when the write never left the queue for PostgreSQL (GroupCommit.NotSent): nothing of it can have landed. */
  public boolean reachedDatabase() {
    return !(getCause() instanceof GroupCommit.NotSent);
  }
}
