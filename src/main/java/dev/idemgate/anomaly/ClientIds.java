package dev.idemgate.anomaly;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.observability.LoggableRequest;
import dev.idemgate.payment.CardNumberScanner;
import io.vertx.core.MultiMap;

/**
 * Who sent a payment, for attributing twins: {@code X-Client-Id}, else {@code User-Agent} (prefixed
 * {@code ua:}), else {@code unknown}. Only a safe subset of characters is kept and the result is cut to
 * {@link #MAX_LENGTH}, so a client cannot inject into logs or blow up the admin view; how many distinct
 * clients are tracked per merchant is bounded by {@link TwinRateJudge}. A header holding a card number
 * (a client that sends one there by mistake) becomes {@link CardNumberScanner#REDACTED}: ids are kept in Redis and
 * shown on the admin view, where no card number may be. One holding an API key (the request's own, any
 * in force) or the admin token becomes {@code redacted:api_key} or {@code redacted:admin_token}
 * ({@link CredentialScanner}), for the same reason.
 */
public final class ClientIds {
  public static final String HEADER = "X-Client-Id";
  public static final String UNKNOWN = "unknown";
  static final int MAX_LENGTH = 64;

  private ClientIds() {}

  public static String attribute(MultiMap headers, CredentialScanner credentials) {
    String presented = CredentialScanner.bearerToken(headers.get("Authorization"));
    String id = clean(headers.get(HEADER), credentials, presented);
    if (!id.isEmpty()) {
      return id;
    }
    String agent = clean(headers.get("User-Agent"), credentials, presented);
    return agent.isEmpty() ? UNKNOWN : clean("ua:" + agent, credentials, presented);
  }

  static String clean(String raw, CredentialScanner credentials, String presented) {
    if (raw == null) {
      return "";
    }
    raw = raw.strip();
    // The whole header, not the part kept: cut at 64 characters, a number could leave digits behind.
    String redacted = LoggableRequest.redaction(raw, credentials, presented);
    if (redacted != null) {
      return redacted;
    }
    StringBuilder out = new StringBuilder(Math.min(raw.length(), MAX_LENGTH));
    for (int i = 0; i < raw.length() && out.length() < MAX_LENGTH; i++) {
      char c = raw.charAt(i);
      boolean safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || c == '.' || c == '_' || c == '-' || c == ':' || c == '/' || c == '+' || c == '@';
      out.append(safe ? c : (c == ' ' ? '_' : '?'));
    }
    return out.toString();
  }
}
