package dev.idemgate.http;

import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.impl.Http1xServerConnection;
import io.vertx.core.net.impl.VertxHandler;
import java.io.IOException;

/**
 * Hands a socket failure of an HTTP/1.x server connection (an {@link IOException}: the client reset
 * it, "connection reset by peer", or a write found it gone, "broken pipe") to Vert.x as the
 * connection's close rather than as an exception.
 *
 * <p>Hazard: Vert.x 5.0.7 fails on such an exception whenever a request is pipelined behind the one
 * being answered. {@code Http1xServerConnection.handleException} passes it first to the request whose
 * head it read last, and one read while another is answered has not begun: it has no response yet,
 * and {@code Http1xServerRequest.handleException} calls {@code response.ended()} on it. The
 * NullPointerException leaves {@code VertxHandler.exceptionCaught}, and Netty logs a WARN naming it
 * with the reset's stack trace, once for each connection a load tester resets with requests
 * waiting. It also cuts Vert.x short: the request being answered never hears of the exception and
 * the channel is not closed there; Netty closes it after the failed read, and Vert.x's close then
 * ends that request as closed.
 *
 * <p>Closed here, the connection takes that same close without the exception: the request being
 * answered ends as closed (its body handler and its response get an {@code HttpClosedException}
 * instead of the IOException, which {@link Problems#handleFailure} reads alike, the client gone),
 * the requests waiting behind it are dropped unseen (never handed to a handler, nothing claimed for
 * them), and the server's connection exception handler, Vert.x's default that logs "Connection
 * failure" at TRACE, is not called. Any other exception (bytes the HTTP decoder refused, a TLS
 * record that cannot be read: Netty wraps both in a DecoderException) goes on to Vert.x as before,
 * and so does any exception once the connection is no longer HTTP/1.x (an h2c upgrade puts its
 * own handler in the place of Vert.x's, under the same name).
 */
@ChannelHandler.Sharable
final class ClientResets extends ChannelInboundHandlerAdapter {
  private static final ClientResets INSTANCE = new ClientResets();
  /** The name Vert.x gives its connection's handler in the channel pipeline. */
  private static final String VERTX_HANDLER = "handler";

  private ClientResets() {}

  /** Puts the handler in front of Vert.x's on an HTTP/1.x connection; other connections are left as they are. */
  static void install(HttpConnection connection) {
    if (connection instanceof Http1xServerConnection http1 && http1.channel().pipeline().get(VERTX_HANDLER) != null) {
      http1.channel().pipeline().addBefore(VERTX_HANDLER, "idemgateClientResets", INSTANCE);
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (cause instanceof IOException && ctx.pipeline().get(VERTX_HANDLER) instanceof VertxHandler<?> vertx
        && vertx.getConnection() instanceof Http1xServerConnection) {
      // As VertxHandler.exceptionCaught would once done: the close Vert.x then sees ends the request.
      ctx.close();
    } else {
      ctx.fireExceptionCaught(cause);
    }
  }
}
