package dev.idemgate.http;

import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.RoutingContext;

/**
 * HTTP/2 answers of one API verticle that the client has not taken. A client can open streams and
 * never let their answers through (a flow-control window of 0 that it never opens, or a socket it
 * never reads) while its PINGs keep the connection from going idle: each such stream holds about
 * 8 KB of heap until the connection closes, and 130 connections of 256 streams each, with no API
 * key, filled a 256 MB heap in 6 seconds and left the gateway unable to recover (a probe, session
 * 26). Netty holds the answer; nothing of ours can see it but the stream still being open after
 * the answer was written.
 *
 * <p>So the stream of every HTTP/2 answer is looked at once, one event-loop turn after its headers
 * went out, when a client that reads has taken a small answer whole and the stream is closed. One
 * still open is held here until {@code request_body_timeout} and then reset (CANCEL) if it is still
 * open; past a number held at once ({@link #API_MAX_HELD}, {@link #MANAGEMENT_MAX_HELD}) it is reset
 * at once. A payment whose answer is reset
 * this way stands: the client's retry with its key gets the answer replayed.
 *
 * <p>Confined to its verticle's event loop, as {@link Deadlines}.
 */
final class UndeliveredAnswers {
  /** Streams an API verticle holds at most, about 8 MB of heap. */
  static final int API_MAX_HELD = 1_024;
  /**
   * Streams the management verticle holds at most: its clients are the kubelet, Prometheus and
   * operators, and one of its answers (a scrape, a report page) can be a hundred KB.
   */
  static final int MANAGEMENT_MAX_HELD = 64;
  /** RFC 9113 section 7: CANCEL, "the stream is no longer needed". */
  private static final long CANCEL = 0x8;

  private final Deadlines<RoutingContext> deadlines;
  private final int maxHeld;
  private int held;

  UndeliveredAnswers(long timeoutMillis, int maxHeld) {
    this.deadlines = new Deadlines<>(timeoutMillis);
    this.maxHeld = maxHeld;
  }

  /**
   * Looks at {@code ctx}'s stream one turn after its answer's headers are written, if it is an
   * HTTP/2 request; an HTTP/1.1 connection holds one answer at most, and its idle timeout ends it.
   */
  void watch(RoutingContext ctx) {
    if (ctx.request().version() == HttpVersion.HTTP_2) {
      ctx.addHeadersEndHandler(v -> ctx.vertx().runOnContext(turn -> lookAt(ctx)));
    }
  }

  private void lookAt(RoutingContext ctx) {
    HttpServerResponse response = ctx.response();
    if (response.closed()) {
      return; // taken
    }
    if (held >= maxHeld) {
      response.reset(CANCEL);
      return;
    }
    held++;
    deadlines.add(ctx, System.nanoTime());
  }

  /** Resets the held streams past their deadline that are still open. */
  void sweep(long nowNanos) {
    deadlines.sweep(nowNanos, ctx -> {
      held--;
      if (!ctx.response().closed()) {
        ctx.response().reset(CANCEL);
      }
    });
  }
}
