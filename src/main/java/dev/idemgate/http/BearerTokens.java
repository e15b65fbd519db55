package dev.idemgate.http;

import dev.idemgate.auth.CredentialScanner;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.RoutingContext;

/** Reads {@code Authorization: Bearer <token>} (scheme case-insensitive, RFC 6750). */
final class BearerTokens {
  private BearerTokens() {}

  /**
   * The token, or null when the header is absent, sent more than once (which one was meant is
   * anybody's guess) or not a bearer credential.
   */
  static String of(RoutingContext ctx) {
    return of(ctx.request());
  }

  static String of(HttpServerRequest request) {
    return CredentialScanner.bearerToken(Headers.single(request, "Authorization"));
  }
}
