package dev.idemgate.http;

/** Every error a client can get, with its HTTP status. The {@code code} strings are a stable contract. */
public enum ErrorCode {
  IDEMPOTENCY_KEY_MISSING(400, "Idempotency-Key header missing"),
  IDEMPOTENCY_KEY_INVALID(400, "Idempotency-Key header invalid"),
  INVALID_REQUEST(400, "Invalid request"),
  CARD_DATA_REJECTED(400, "Card data rejected"),
  /** An API key or the admin token in a payment's body, which would be stored and sent on with it. */
  CREDENTIAL_REJECTED(400, "Credential rejected"),
  UNAUTHORIZED(401, "Unauthorized"),
  NOT_FOUND(404, "Not found"),
  METHOD_NOT_ALLOWED(405, "Method not allowed"),
  REQUEST_TIMEOUT(408, "Request timeout"),
  IDEMPOTENCY_KEY_IN_USE(409, "Idempotency key in use"),
  DUPLICATE_PAYMENT_SUSPECTED(409, "Duplicate payment suspected"),
  /** Admin only: the record is not in a state the operation may change now. */
  CONFLICT(409, "Conflict"),
  PAYLOAD_TOO_LARGE(413, "Payload too large"),
  URI_TOO_LONG(414, "URI too long"),
  UNSUPPORTED_MEDIA_TYPE(415, "Unsupported media type"),
  EXPECTATION_FAILED(417, "Expectation failed"),
  IDEMPOTENCY_KEY_REUSED(422, "Idempotency key reused"),
  RATE_LIMITED(429, "Rate limited"),
  REQUEST_HEADER_FIELDS_TOO_LARGE(431, "Request header fields too large"),
  INTERNAL_ERROR(500, "Internal error"),
  PROVIDER_UNAVAILABLE(502, "Provider unavailable"),
  STORE_UNAVAILABLE(503, "Store unavailable");

  private final int status;
  private final String title;

  ErrorCode(int status, String title) {
    this.status = status;
    this.title = title;
  }

  public int status() {
    return status;
  }

  public String title() {
    return title;
  }

  /** The stable machine-readable code, e.g. {@code idempotency_key_in_use}. */
  public String code() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }
}
