package dev.idemgate.idempotency;

/** PostgreSQL did not answer in time or failed; the request gets 503 and nothing is charged. */
public final class StoreUnavailable extends RuntimeException {
  public StoreUnavailable(String operation, Throwable cause) {
    super("store " + operation + " failed: " + cause, cause);
  }
}
