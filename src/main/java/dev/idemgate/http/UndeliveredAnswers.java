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
 * <p>Hazard: most held streams are no attack. Under load an answer often waits a moment for the
 * socket or the connection's window (1,000 streams on four connections), and is taken a few
 * milliseconds later. Such a stream closes while it is still held here; it must stop counting then,
 * or the cap fills with answers long delivered and every answer that waits a moment afterwards is
 * reset (before session 30, a stream counted until its deadline: 306 of 1,330 answers a client took
 * late were reset, and a 4 × 256-stream h2c load saw thousands). There is no hook for a stream's
 * close once its answer is written (Vert.x Web holds the response's close handler), so the closed
 * ones are dropped when the cap is reached ({@link #makeRoom}).
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
  /** Set when a look for closed streams found few: the next look waits for the next sweep. */
  private boolean roomLooked;

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
    if (held >= maxHeld && !makeRoom()) {
      response.reset(CANCEL);
      return;
    }
    held++;
    deadlines.add(ctx, System.nanoTime());
  }

  /**
   * At the cap: drops the held streams that closed since (their answers were taken late), and says
   * whether there is room now. A walk of the whole list, so bounded: one that frees fewer than an
   * eighth of the cap (the streams really are held, as by a client that never reads) is not made
   * again before the next sweep, so a flood of such streams costs one walk a sweep interval, and a
   * walk that frees more costs at most eight looks per stream it makes room for.
   */
  private boolean makeRoom() {
    if (roomLooked) {
      return false;
    }
    int freed = deadlines.removeIf(ctx -> ctx.response().closed());
    held -= freed;
    roomLooked = freed < maxHeld / 8;
    return held < maxHeld;
  }

  /** Resets the held streams past their deadline that are still open. */
  void sweep(long nowNanos) {
    roomLooked = false;
    deadlines.sweep(nowNanos, ctx -> {
      held--;
      if (!ctx.response().closed()) {
        ctx.response().reset(CANCEL);
      }
    });
  }
}
