package dev.idemgate.http;

import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.StreamResetException;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.impl.ConnectionBase;
import io.vertx.ext.web.Route;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.io.IOException;
import java.time.Instant;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one renderer of errors: {@code application/problem+json} (RFC 9457) with {@code type},
 * {@code title}, {@code status}, {@code detail}, the stable {@code code} and the {@code request_id}.
 * Anything that is not an {@link ApiProblem} becomes a 500 whose body says nothing of the cause.
 */
public final class Problems {
  private static final Logger log = LoggerFactory.getLogger(Problems.class);

  private Problems() {}

  /** Router failure handler. */
  public static void handleFailure(RoutingContext ctx) {
    RequestIds.ensure(ctx);
    if (ctx.response().headWritten()) {
      ctx.response().reset();
      return;
    }
    Throwable failure = ctx.failure();
    if (failure instanceof ApiProblem problem) {
      send(ctx, problem);
      return;
    }
    if (!ctx.request().isEnded() && unreadable(failure)) {
      // The client's bytes are not HTTP (a chunk size that is no number, say): its fault, not ours.
      log.debug("request {} could not be read: {}", RequestIds.of(ctx), String.valueOf(failure));
      if (!ctx.response().closed()) {
        boolean http1 = ctx.request().version() != HttpVersion.HTTP_2;
        if (http1) {
          ctx.response().putHeader("Connection", "close"); // the framing is lost: nothing after it can be read
        }
        send(ctx, new ApiProblem(ErrorCode.INVALID_REQUEST,
            "the request body could not be read: its framing (chunked encoding or length) is broken"));
        if (http1) {
          flushBeforeTheClose(ctx.request().connection());
        }
      }
      return;
    }
    if (failure instanceof HttpClosedException || failure instanceof StreamResetException
        || failure instanceof IOException && !ctx.request().isEnded()) {
      // The client hung up, reset its stream or its connection (an IOException such as "connection
      // reset by peer") before its body was in: nobody to answer, and no fault of ours. The access
      // line records it as 499 client_closed.
      log.debug("request {} ended by the client before its body was in: {}", RequestIds.of(ctx), String.valueOf(failure));
      return;
    }
    ApiProblem problem = switch (ctx.statusCode()) {
      case 404 -> new ApiProblem(ErrorCode.NOT_FOUND, "no such resource");
      case 405 -> new ApiProblem(ErrorCode.METHOD_NOT_ALLOWED, "this method is not allowed here");
      case 413 -> new ApiProblem(ErrorCode.PAYLOAD_TOO_LARGE, "the body is larger than 64 KiB");
      case 415 -> new ApiProblem(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json");
      // The body handler refuses an Expect header other than 100-continue.
      case 417 -> new ApiProblem(ErrorCode.EXPECTATION_FAILED, "the only expectation supported is Expect: 100-continue");
      case 400 -> new ApiProblem(ErrorCode.INVALID_REQUEST, "the request could not be read");
      default -> null;
    };
    if (problem == null) {
      log.error("request {} failed", RequestIds.of(ctx), failure);
      problem = new ApiProblem(ErrorCode.INTERNAL_ERROR, "an internal error occurred; quote the request_id when reporting it");
    }
    if (!ctx.response().closed()) { // else the client is gone: nobody to answer
      send(ctx, problem);
    }
  }

  /**
   * Hands the answer just written to the socket at once. Hazard: Vert.x 5.0.7 closes an HTTP/1.x
   * connection whose bytes its decoder refused right after passing the failure to the request
   * (VertxHandler.exceptionCaught closes the channel itself, not through the connection's own close,
   * which flushes first), and an answer written while a read is under way is only flushed when that
   * read completes: the 400 was dropped unsent, and the client saw the connection end with no answer
   * (every time in a probe with the whole request in one write). A flush here costs nothing else:
   * the connection is closed next either way.
   */
  private static void flushBeforeTheClose(HttpConnection connection) {
    if (connection instanceof ConnectionBase base) {
      base.channel().flush();
    }
  }

  /**
   * The router's 400 handler: a request no route could take because its path cannot be decoded (a
   * broken percent-encoding). Vert.x calls it with no failure and no status code set.
   */
  public static void undecodablePath(RoutingContext ctx) {
    RequestIds.ensure(ctx);
    if (!ctx.response().headWritten() && !ctx.response().closed()) {
      send(ctx, new ApiProblem(ErrorCode.INVALID_REQUEST, "the request's path could not be decoded (a broken percent-encoding)"));
    }
  }

  /**
   * The router's 405 handler: the problem body, with the {@code Allow} header RFC 9110 asks for,
   * naming the methods the router's routes take for this path.
   */
  public static Handler<RoutingContext> methodNotAllowed(Router router) {
    return ctx -> {
      String allowed = allowedMethods(router, ctx.normalizedPath());
      if (!allowed.isEmpty()) {
        ctx.response().putHeader("Allow", allowed);
      }
      handleFailure(ctx);
    };
  }

  /**
   * The methods of the routes whose path fits {@code path}, a {@code :name} matching one segment.
   * A route made from a regular expression has no path and counts for nothing.
   */
  static String allowedMethods(Router router, String path) {
    Set<String> methods = new TreeSet<>();
    for (Route route : router.getRoutes()) {
      if (route.methods() != null && route.getPath() != null && pathFits(route.getPath(), path)) {
        route.methods().forEach(method -> methods.add(method.name()));
      }
    }
    return String.join(", ", methods);
  }

  private static boolean pathFits(String pattern, String path) {
    if (path.length() > 1 && path.endsWith("/")) {
      path = path.substring(0, path.length() - 1); // the router takes /pay/ for /pay
    }
    String[] want = pattern.split("/", -1);
    String[] have = path.split("/", -1);
    if (want.length != have.length) {
      return false;
    }
    for (int i = 0; i < want.length; i++) {
      boolean parameter = want[i].startsWith(":") && !have[i].isEmpty();
      if (!parameter && !want[i].equals(have[i])) {
        return false;
      }
    }
    return true;
  }

  /**
   * A failure raised by Netty's HTTP codec while reading the request (the caller checks that the
   * request is not all in): the client sent something that is not HTTP. Such a failure comes as the
   * codec's own exception (a NumberFormatException for a bad chunk size), so it is told by where it
   * was thrown. Hazard: that depends on Netty throwing from its codec package, as 4.2 does;
   * ClientMistakesIT fails on an ERROR line if it stops doing so.
   */
  static boolean unreadable(Throwable failure) {
    if (failure instanceof DecoderException) {
      return true;
    }
    StackTraceElement[] trace = failure == null ? new StackTraceElement[0] : failure.getStackTrace();
    return trace.length > 0 && trace[0].getClassName().startsWith("io.netty.handler.codec.");
  }

  /**
   * The server's handler of a request line or headers that cannot be read (too long, malformed),
   * which never reach the router: the same problem body as every other error, then the connection
   * is closed, as nothing after such a request can be trusted to start where it seems to.
   */
  public static void invalidRequest(HttpServerRequest request) {
    invalidRequest(request, ApiVerticle.MAX_HEADER_BYTES);
  }

  /** {@link #invalidRequest(HttpServerRequest)} on a server whose headers may take {@code maxHeaderBytes}. */
  static void invalidRequest(HttpServerRequest request, int maxHeaderBytes) {
    Throwable cause = request.decoderResult().cause();
    ApiProblem problem = cause instanceof TooLongHttpLineException
        ? new ApiProblem(ErrorCode.URI_TOO_LONG, "the request line is longer than 4 KiB")
        : cause instanceof TooLongHttpHeaderException
            ? new ApiProblem(ErrorCode.REQUEST_HEADER_FIELDS_TOO_LARGE, "the headers are larger than "
                + maxHeaderBytes / 1024 + " KiB")
            : new ApiProblem(ErrorCode.INVALID_REQUEST, "the request could not be read as HTTP");
    // The exception's class, not its message: Netty's quotes the header value it refused whole, which
    // may be "Bearer <api key>".
    log.debug("request refused before routing: {} ({})", problem.detail(),
        cause == null ? "no cause given" : cause.getClass().getName());
    String requestId = RequestIds.newId();
    // Date as on every other answer (RFC 9110 6.6.1): these never reach the request handler that
    // adds it. Formatted here, once per refused request, which is no hot path.
    request.response().putHeader(HttpHeaders.DATE, HttpDates.format(Instant.now()))
        .putHeader("X-Request-Id", requestId).putHeader("Connection", "close");
    render(request.response(), problem, requestId, request.method() == HttpMethod.HEAD)
        .onComplete(written -> request.connection().close());
  }

  /** RST_STREAM error code PROTOCOL_ERROR (RFC 9113 §7). */
  private static final long HTTP2_PROTOCOL_ERROR = 0x1;

  /**
   * Why a request's target is malformed, or null when it is not. HTTP/1.x (RFC 9112 §3.2): a path
   * from "/" (origin-form) or an http or https URL (absolute-form, {@link #isAbsoluteForm}).
   * HTTP/2 (RFC 9113 §8.3.1): {@code :scheme} http or https, and {@code :path} origin-form. In
   * either, {@code *} only for OPTIONS, and no fragment. Netty lets such a target through, and the
   * router would answer 404 as if the resource were missing, or charge it: {@code /pay?a=1#x} is
   * /pay with a query, and Vert.x reads the path of an HTTP/2 {@code http://host/pay} as /pay.
   */
  static String malformedTarget(HttpServerRequest request) {
    if (request.method() == HttpMethod.CONNECT) {
      return null; // authority-form, or over HTTP/2 no :scheme nor :path: the router answers it 405
    }
    boolean http2 = request.version() == HttpVersion.HTTP_2;
    if (http2) {
      String scheme = request.scheme();
      if (!"http".equalsIgnoreCase(scheme) && !"https".equalsIgnoreCase(scheme)) {
        return "the :scheme must be http or https";
      }
    }
    String target = request.uri();
    if ("*".equals(target) && request.method() == HttpMethod.OPTIONS) {
      return null;
    }
    if (target != null && target.indexOf('#') < 0 && (target.startsWith("/") || !http2 && isAbsoluteForm(target))) {
      return null;
    }
    return http2 ? "the :path must be a path starting with / (origin-form), without a fragment"
        : "the request target must be a path starting with / (origin-form) or an http or https URL with a host "
            + "(absolute-form), without a fragment";
  }

  /**
   * Whether an HTTP/1.x target is an http or https URL with a host (RFC 9110 §4.2), which Vert.x
   * routes by its path. A URL of another scheme names no resource of this gateway, and one with no
   * host is invalid (RFC 9110 §4.2.1); Vert.x would route both by their path all the same.
   */
  private static boolean isAbsoluteForm(String target) {
    int host = target.regionMatches(true, 0, "http://", 0, 7) ? 7 : target.regionMatches(true, 0, "https://", 0, 8) ? 8 : -1;
    return host > 0 && target.length() > host && target.charAt(host) != '/' && target.charAt(host) != '?';
  }

  /**
   * Answers a malformed request 400 with the reason, its body never read, and returns true; returns
   * false for any other request. Malformed: its target ({@link #malformedTarget}), or over HTTP/1.x
   * its Host ({@link HostField#problem(HttpServerRequest)}). What carries it is then ended: an
   * HTTP/2 stream is reset PROTOCOL_ERROR, as RFC 9113 §8.1.1 has it, an HTTP/1.x connection
   * closed, as its unread body would be taken for the next request (and after Host lines that a
   * proxy in front may have read otherwise, nothing on the connection can be trusted).
   */
  public static boolean refusedMalformed(HttpServerRequest request) {
    String reason = malformedTarget(request);
    if (reason == null) {
      reason = HostField.problem(request);
    }
    if (reason == null) {
      return false;
    }
    log.debug("malformed request refused: {}", reason);
    boolean http2 = request.version() == HttpVersion.HTTP_2;
    String requestId = RequestIds.newId();
    request.response().putHeader("X-Request-Id", requestId);
    // Date as on every answer (RFC 9110 6.6.1): the API port sets it as a routed answer's headers go
    // out, and this one is never routed (the management port's is there already, from its arrival).
    if (!request.response().headers().contains(HttpHeaders.DATE)) {
      request.response().putHeader(HttpHeaders.DATE, HttpDates.format(Instant.now()));
    }
    if (!http2) {
      request.response().putHeader("Connection", "close");
    }
    render(request.response(), new ApiProblem(ErrorCode.INVALID_REQUEST, "malformed request: " + reason
        + "; nothing was claimed or charged"), requestId, request.method() == HttpMethod.HEAD)
        .onComplete(written -> {
          if (http2) {
            request.response().reset(HTTP2_PROTOCOL_ERROR);
          } else {
            request.connection().close();
          }
        });
    return true;
  }

  /** RST_STREAM error code CANCEL (RFC 9113 §7): the stream is no longer needed. */
  private static final long HTTP2_CANCEL = 0x8;

  /**
   * Answers a request whose body is left unread (it may never come, or be a GiB), then ends what
   * carries it: an HTTP/2 stream is reset, an HTTP/1.1 connection closed (Vert.x keeps it open
   * whatever {@code Connection: close} says). Left open, the connection stays paused, and a
   * client's next request on it is never read.
   */
  public static Future<Void> sendLeavingBodyUnread(RoutingContext ctx, ApiProblem problem) {
    boolean http2 = ctx.request().version() == HttpVersion.HTTP_2;
    if (!http2) {
      ctx.response().putHeader("Connection", "close");
    }
    return send(ctx, problem).onComplete(written -> {
      if (http2) {
        ctx.response().reset(HTTP2_CANCEL);
      } else {
        ctx.request().connection().close();
      }
    });
  }

  /**
   * Writes the problem as the response; the future completes once it is written. An answer to a
   * request whose body is held back for a 100 (Continue) that was never sent ends its connection
   * ({@link #closingIfBodyWithheld}).
   */
  public static Future<Void> send(RoutingContext ctx, ApiProblem problem) {
    return answerMaybeBeforeBody(ctx.request(),
        () -> render(ctx.response(), problem, RequestIds.of(ctx), ctx.request().method() == HttpMethod.HEAD));
  }

  /**
   * Writes an answer that may come before the request's body is read ({@code write}), and closes the
   * connection once it is written when the client holds that body back ({@link #closingIfBodyWithheld},
   * asked before the write, which must carry its {@code Connection: close}).
   */
  static Future<Void> answerMaybeBeforeBody(HttpServerRequest request, Supplier<Future<Void>> write) {
    boolean closing = closingIfBodyWithheld(request);
    Future<Void> written = write.get();
    return closing ? written.onComplete(done -> request.connection().close()) : written;
  }

  /**
   * Whether a final answer to {@code request}, about to be written, leaves unread a body the client
   * holds back: an HTTP/1.1 request with an {@code Expect} header (100-continue, or one the body
   * handler refuses 417), not all in, of which no body byte has been read. Such a client waits for
   * 100 (Continue), and given a final status instead it may skip its body (RFC 9110 §10.1.1), as
   * curl, Go and Java clients do; Vert.x keeps the connection open and takes the next bytes for that
   * body, so the client's next request on it was read as the body and its rest answered HTTP/1.0
   * 400. If so, this marks the answer {@code Connection: close} (RFC 9110 §10.1.1 asks a server to
   * say whether it will keep reading), shuts the connection down and returns true: the caller closes
   * it once the answer is written. The shutdown comes first, before the answer: Vert.x then serves no
   * request after this one on the connection (RFC 9112 §9.6). Closed without it, a payment pipelined
   * behind this request in the same write (its body sent at once) was still served, and charged, and
   * its answer cut by the close; its retry replayed it. {@link #CLOSE_BACKSTOP_MS} bounds the
   * shutdown should the close never come. Not HTTP/2, whose streams are framed on their own, nor
   * HTTP/1.0, whose 100-continue a server must ignore. Not a request that was sent 100 either: its
   * body is read before any answer but a 413 for a chunked body past the limit (bytes read by then)
   * or a 408 (which closes the connection itself). Hazard: a client that sends its body without
   * waiting has it read before the close when it came with the head; one whose body is still on
   * its way when the connection closes may get a reset and lose the answer.
   * Cost: only problem answers and a payment's GET call this. A request all in (a problem found
   * after the body, a GET answered once the store replied) pays for one flag check; the others,
   * answered before their body, for a header lookup. The answers of payments (201, 402, 202,
   * replays) never call it.
   */
  private static boolean closingIfBodyWithheld(HttpServerRequest request) {
    if (request.isEnded() || request.version() != HttpVersion.HTTP_1_1 || request.bytesRead() > 0
        || !request.headers().contains(HttpHeaders.EXPECT)) {
      return false;
    }
    request.response().putHeader(HttpHeaders.CONNECTION, HttpHeaders.CLOSE);
    request.connection().shutdown(CLOSE_BACKSTOP_MS, TimeUnit.MILLISECONDS);
    return true;
  }

  /** How long a connection shut down by {@link #closingIfBodyWithheld} may wait for the close that follows its answer. */
  static final long CLOSE_BACKSTOP_MS = 5_000;

  /** @param head whether the request was HEAD: its answer has the headers and no body (over HTTP/2, a body is a protocol error) */
  private static Future<Void> render(HttpServerResponse response, ApiProblem problem, String requestId, boolean head) {
    ErrorCode code = problem.code();
    JsonObject body = new JsonObject()
        .put("type", "urn:idemgate:problem:" + code.code())
        .put("title", code.title())
        .put("status", code.status())
        .put("detail", problem.detail())
        .put("code", code.code())
        .put("request_id", requestId);
    if (problem.errors() != null) {
      body.put("errors", problem.errors());
    }
    if (problem.extensions() != null) {
      problem.extensions().forEach(member -> {
        if (!body.containsKey(member.getKey())) {
          body.put(member.getKey(), member.getValue());
        }
      });
    }
    if (problem.retryAfterSeconds() != null) {
      response.putHeader("Retry-After", String.valueOf(problem.retryAfterSeconds()));
    }
    response.setStatusCode(code.status()).putHeader("Content-Type", "application/problem+json");
    return head ? response.end() : response.end(body.encode());
  }
}
