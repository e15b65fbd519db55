package dev.idemgate.http;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/**
 * A client error on its way to {@link Problems}: the code, a detail written for the client (never an
 * exception message), and optionally the per-field errors and a Retry-After.
 */
public final class ApiProblem extends RuntimeException {
  private final ErrorCode code;
  private final String detail;
  private final JsonArray errors;
  private final Integer retryAfterSeconds;
  private JsonObject extensions;

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

  /** Adds an extension member (RFC 9457 §3.2) to the body; the standard members cannot be overridden. */
  public ApiProblem with(String member, Object value) {
    if (extensions == null) {
      extensions = new JsonObject();
    }
    extensions.put(member, value);
    return this;
  }

  public JsonObject extensions() {
    return extensions;
  }
}
