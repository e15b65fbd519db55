package dev.idemgate.idempotency;

/** PostgreSQL did not answer in time or failed; the request gets 503 and nothing is charged. */
public final class StoreUnavailable extends RuntimeException {
  private final String operation;

  public StoreUnavailable(String operation, Throwable cause) {
    super("store " + operation + " failed: " + cause, cause);
    this.operation = operation;
  }

  /** The statement that failed, by name: claim, read, complete, held, release, find payment. */
  public String operation() {
    return operation;
  }
}
