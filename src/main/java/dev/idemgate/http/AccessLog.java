package dev.idemgate.http;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.observability.LoggableRequest;
import io.vertx.core.AsyncResult;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.RoutingContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.spi.LoggingEventBuilder;

/**
 * The access lines of both ports: logger {@code idemgate.access}, message {@code request}, one line
 * per request once it ended. Each port adds its own fields to the common start ({@link #line}).
 */
final class AccessLog {
  /** The status logged for a request whose connection closed before it was answered (nginx's 499). */
  static final int CLIENT_CLOSED_STATUS = 499;
  private static final Logger access = LoggerFactory.getLogger("idemgate.access");

  private AccessLog() {}

  /**
   * A request's path as a line may hold it ({@link LoggableRequest#path}), without a fragment: Netty leaves one
   * in the path (the query, which may carry a client's key, is never part of it). Null for a request
   * line too long to be read.
   */
  static String loggablePath(HttpServerRequest request, CredentialScanner credentials) {
    return LoggableRequest.path(withoutFragment(request.path()), credentials, BearerTokens.of(request));
  }

  /**
   * Whether a request the HTTP decoder refused had its request line read. When it had not (a line
   * over 4 KiB, or not HTTP), Netty hands on a stand-in, {@code HTTP/1.0 GET /bad-request}, whose
   * method and path no client sent: such a request has no line of its own (its answer still names
   * its request id).
   */
  static boolean requestLineRead(HttpServerRequest request) {
    return !(request.version() == HttpVersion.HTTP_1_0 && "/bad-request".equals(request.uri()));
  }

  /**
   * The request's method as a line may hold it ({@link LoggableRequest#method}). The bearer token is read
   * only for a method long enough to hold it: every line has a method, and those of the routes are shorter.
   */
  private static String loggableMethod(HttpServerRequest request, CredentialScanner credentials) {
    String method = request.method().name();
    return LoggableRequest.method(method, credentials,
        method.length() < CredentialScanner.MIN_KEY_CHARS ? null : BearerTokens.of(request));
  }

  static String withoutFragment(String path) {
    int fragment = path == null ? -1 : path.indexOf('#');
    return fragment < 0 ? path : path.substring(0, fragment);
  }

  /**
   * Whether the connection (over HTTP/2, the stream) closed before the answer went out, from the
   * result a {@code RoutingContext} end handler gets. That result alone does not say: Vert.x Web fails
   * it whenever the response's close is seen before its end, and over HTTP/2 a stream answered after
   * an asynchronous step (a claim, a charge) closes that way once answered. Before session 23 nearly
   * every HTTP/2 answer was logged 499 and counted {@code client_closed}. An ended response is an
   * answered request.
   */
  static boolean clientClosed(RoutingContext ctx, AsyncResult<Void> end) {
    return end.failed() && !ctx.response().ended();
  }

  /**
   * The start of the line of an ended request: request id, method, what was asked for (named
   * {@code target}: the API port logs a route name, the management port the path), status and
   * latency. The caller adds its fields and then {@code log("request")}.
   *
   * @param clientClosed whether the connection closed before the answer went out (status 499)
   */
  static LoggingEventBuilder line(RoutingContext ctx, String target, String targetValue, boolean clientClosed,
      long latencyNanos, CredentialScanner credentials) {
    return line(ctx.request(), RequestIds.of(ctx), target, targetValue, clientClosed, latencyNanos, credentials);
  }

  /** {@link #line(RoutingContext, String, String, boolean, long, CredentialScanner)} for a request answered before routing. */
  static LoggingEventBuilder line(HttpServerRequest request, String requestId, String target, String targetValue,
      boolean clientClosed, long latencyNanos, CredentialScanner credentials) {
    return access.atInfo()
        .addKeyValue("request_id", requestId)
        .addKeyValue("method", loggableMethod(request, credentials))
        .addKeyValue(target, targetValue)
        .addKeyValue("status", clientClosed ? CLIENT_CLOSED_STATUS : request.response().getStatusCode())
        .addKeyValue("latency_ms", latencyNanos / 1_000_000.0);
  }
}
