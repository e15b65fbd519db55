package dev.idemgate.http;

import io.vertx.ext.web.RoutingContext;

/** Reads {@code Authorization: Bearer <token>} (scheme case-insensitive, RFC 6750). */
final class BearerTokens {
  private BearerTokens() {}

  /**
   * The token, or null when the header is absent, sent more than once (which one was meant is
   * anybody's guess) or not a bearer credential.
   */
  static String of(RoutingContext ctx) {
    String header = Headers.single(ctx.request(), "Authorization");
    return header != null && header.regionMatches(true, 0, "Bearer ", 0, 7) ? header.substring(7).trim() : null;
  }
}
