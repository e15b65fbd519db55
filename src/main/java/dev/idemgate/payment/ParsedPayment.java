package dev.idemgate.payment;

import dev.idemgate.auth.CredentialScanner;
import io.vertx.core.json.JsonObject;
import java.util.List;

/** The result of reading a {@code POST /pay} body. */
public sealed interface ParsedPayment {
  /** A usable request, with the parsed body it came from (for the fingerprint). */
  record Valid(PaymentRequest request, JsonObject body) implements ParsedPayment {}

  /** Not a valid payment: every problem found, one per field. */
  record Invalid(List<FieldError> errors) implements ParsedPayment {}

  /** Card data was found at {@code field}. The value itself is never kept. */
  record CardData(String field) implements ParsedPayment {}

  /** An API key or the admin token was found at {@code field}. The value itself is never kept. */
  record CredentialData(String field, CredentialScanner.Credential credential) implements ParsedPayment {}

  /** One field's problem, in words a client developer can act on. */
  record FieldError(String field, String problem) {
    public JsonObject toJson() {
      return new JsonObject().put("field", field).put("problem", problem);
    }
  }
}
