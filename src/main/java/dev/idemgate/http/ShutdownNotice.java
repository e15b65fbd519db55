package dev.idemgate.http;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.RoutingContext;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * Tells one API verticle's HTTP/2 clients that the gateway is stopping, in the two steps of RFC 9113
 * section 6.8, before the server's own shutdown sends its GOAWAY.
 *
 * <p>The hazard: the server's shutdown sends one GOAWAY naming the last stream it has seen. A POST
 * the client sent before that GOAWAY reached it is refused (REFUSED_STREAM, as it should be), and
 * when its body arrives Netty treats DATA on a stream it refused as a connection error and closes
 * the connection (it checks that the stream "may have existed", and a refused one never did), so
 * every other stream of that connection loses its answer: payments at the provider complete, but
 * their clients read a closed connection (session 26's probe, 17–43 answers lost in 3 of 5
 * rolling stops). Netty and Vert.x offer no hook into that decoder.
 *
 * <p>So first a GOAWAY with the highest stream id (NO_ERROR: "stopping, open no more streams"),
 * which refuses nothing, and a PING; its acknowledgement comes after the client read the GOAWAY,
 * so every stream it opened before lies before it, and is served. Then the server's shutdown
 * finds a GOAWAY already sent, sends no other one (Netty's close does not send a second) and waits
 * for the open streams. The wait for the acknowledgements is bounded ({@link #BOUND_MILLIS}): a
 * client that does not answer is shut down as before.
 *
 * <p>HTTP/1.1 has no such notice: the server's shutdown closes each connection once its answer is
 * out. So an answer whose headers go out once the stop began says {@code Connection: close} (RFC
 * 9112 section 9.6), and a keep-alive client (a load tester's pool) opens a new connection for its
 * next request instead of sending it into the close, where it is lost unanswered, and learns that
 * a request it pipelined behind this one was not served.
 *
 * <p>Confined to its verticle's event loop.
 */
final class ShutdownNotice {
  /** Longest wait for PING acknowledgements: a round trip through an ingress takes well under it. */
  static final long BOUND_MILLIS = 1_000;
  private static final int HIGHEST_STREAM_ID = Integer.MAX_VALUE;
  private static final long NO_ERROR = 0;

  private final Set<HttpConnection> http2 = new HashSet<>();
  /** Set by {@link #announce()}: from then on a connection seen for the first time is told at once. */
  private boolean stopping;
  /** PINGs sent and not yet acknowledged (or failed, when their connection closed). */
  private int unanswered;
  private final Promise<Void> allAnswered = Promise.promise();

  /**
   * Notes the connection of an HTTP/2 request (one that has sent nothing yet has no stream to lose).
   * A connection whose first request arrives while the notice waits for its PINGs is told too, and
   * waited for: the server still accepts connections until its shutdown, and one told only by the
   * shutdown's GOAWAY could lose its answers the same way.
   */
  void requestArrived(HttpServerRequest request) {
    if (request.version() == HttpVersion.HTTP_2 && http2.add(request.connection()) && stopping) {
      tell(request.connection());
    }
  }

  /** Makes {@code ctx}'s answer say {@code Connection: close} if the stop has begun by the time it is written (HTTP/1.x only). */
  void watch(RoutingContext ctx) {
    if (ctx.request().version() != HttpVersion.HTTP_2) {
      ctx.addHeadersEndHandler(v -> {
        if (stopping) {
          ctx.response().headers().set(HttpHeaders.CONNECTION, HttpHeaders.CLOSE);
        }
      });
    }
  }

  void closed(HttpConnection connection) {
    http2.remove(connection);
  }

  /**
   * Sends each HTTP/2 connection the first GOAWAY and a PING; completes when every PING sent (to
   * these connections and to those first seen meanwhile) is answered, or after the bound.
   */
  Future<Void> announce() {
    stopping = true;
    http2.forEach(this::tell);
    if (unanswered == 0) {
      allAnswered.tryComplete();
    }
    return allAnswered.future().timeout(BOUND_MILLIS, TimeUnit.MILLISECONDS).otherwiseEmpty();
  }

  private void tell(HttpConnection connection) {
    unanswered++;
    connection.goAway(NO_ERROR, HIGHEST_STREAM_ID);
    // A connection that closes meanwhile fails its PING: nothing more to wait for there either.
    connection.ping(Buffer.buffer(new byte[8])).onComplete(answered -> {
      if (--unanswered == 0) {
        allAnswered.tryComplete();
      }
    });
  }
}
