package dev.idemgate.http;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.observability.LoggableRequest;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.RoutingContext;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

/** A request id per request, echoed as {@code X-Request-Id} and in every problem body. */
final class RequestIds {
  private static final String KEY = "idemgate.request_id";

  private RequestIds() {}

  static void assign(RoutingContext ctx) {
    String id = newId();
    ctx.put(KEY, id);
    ctx.response().putHeader("X-Request-Id", id);
    ctx.next();
  }

  /** Assigns an id to a request that no route handled (a path that cannot be decoded, say). */
  static void ensure(RoutingContext ctx) {
    if (ctx.get(KEY) == null && !ctx.response().headWritten()) {
      String id = newId();
      ctx.put(KEY, id);
      ctx.response().putHeader("X-Request-Id", id);
    }
  }

  static String newId() {
    return "req_" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
  }

  /** The longest request id from outside that a line keeps (a UUID is 36, ingress-nginx's 32). */
  static final int MAX_FORWARDED_ID = 128;

  /**
   * The {@code X-Request-Id} a request arrived with (an ingress sets one: ingress-nginx does by
   * default), for the access line beside the gateway's own id, which the answer carries: it is what
   * joins the ingress's log to the gateway's. Null when absent, over {@link
   * #MAX_FORWARDED_ID} characters or holding anything but printable ASCII without spaces (a log line
   * is no place for whatever a client sends); {@code redacted:card_number} when it holds a card number,
   * {@code redacted:api_key} or {@code redacted:admin_token} when it holds the API key the request was
   * sent with, any key in force or the admin token ({@link CredentialScanner}).
   */
  static String forwarded(HttpServerRequest request, CredentialScanner credentials) {
    String id = request.getHeader("X-Request-Id");
    if (id == null || id.isEmpty() || id.length() > MAX_FORWARDED_ID) {
      return null;
    }
    for (int i = 0; i < id.length(); i++) {
      char c = id.charAt(i);
      if (c <= ' ' || c > '~') {
        return null;
      }
    }
    String redacted = LoggableRequest.redaction(id, credentials, BearerTokens.of(request));
    return redacted != null ? redacted : id;
  }

  static String of(RoutingContext ctx) {
    String id = ctx.get(KEY);
    return id == null ? "req_unassigned" : id;
  }
}
