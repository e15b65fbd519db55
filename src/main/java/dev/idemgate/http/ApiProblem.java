package dev.idemgate.http;

import io.vertx.core.json.JsonArray;

/**
 * A client error on its way to {@link Problems}: the code, a detail written for the client (never an
 * exception message), and optionally the per-field errors and a Retry-After.
 */
public final class ApiProblem extends RuntimeException {
  private final ErrorCode code;
  private final String detail;
  private final JsonArray errors;
  private final Integer retryAfterSeconds;

  public ApiProblem(ErrorCode code, String detail) {
    this(code, detail, null, null);
  }

  public ApiProblem(ErrorCode code, String detail, JsonArray errors, Integer retryAfterSeconds) {
    super(code.code(), null, false, false);
    this.code = code;
    this.detail = detail;
    this.errors = errors;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  public ErrorCode code() {
    return code;
  }

  public String detail() {
    return detail;
  }

  public JsonArray errors() {
    return errors;
  }

  public Integer retryAfterSeconds() {
    return retryAfterSeconds;
  }
}
