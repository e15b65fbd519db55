package dev.idemgate.storage;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.vertx.core.AsyncResult;
import io.vertx.core.Completable;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxException;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.PromiseInternal;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.internal.VertxWrapper;
import io.vertx.core.internal.net.NetSocketInternal;
import io.vertx.core.net.ClientSSLOptions;
import io.vertx.core.net.ConnectOptions;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.SocketAddress;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.pgclient.impl.PgConnectionFactory;
import io.vertx.pgclient.spi.PgDriver;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.impl.SocketConnectionBase;
import io.vertx.sqlclient.internal.SqlConnectionInternal;
import io.vertx.sqlclient.spi.ConnectionFactory;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Vert.x's PostgreSQL driver, with a deadline on every attempt of a pool to open a connection: the
 * TCP connect, TLS and the start-up exchange (start-up message, authentication, parameters, ready
 * for query) together. An attempt holds a place in its pool until it ends, and Vert.x 5.0.7 gave it
 * no end of its own: its driver makes its connection factory without the pool's transport options
 * (eclipse-vertx/vertx-sql-client#1608, fixed after 5.0.7), so a TCP connect waited Netty's 60 s,
 * and a start-up exchange never answered (a stopped PostgreSQL behind a live port, a proxy or load
 * balancer with no server) held its place for ever. With every place so held, every request waited
 * for a connection and was answered 503, though the pool's own connection timeout had passed.
 *
 * <p>When the deadline passes, the attempt fails (naming the deadline and host:port, never the
 * password), so the pool frees the place, and its socket is closed. A connection the stock factory
 * delivers after that is closed at once, never handed to the pool. The pool's transport options also
 * reach the TCP client here, as they will once Vert.x takes them itself. Every connection it hands
 * the pool is watched by {@link ReadOnlySessions}: one whose session turns out read-only is closed.
 *
 * <p>Hazard: this goes through the client's internals (the factory's Vert.x instance, and the
 * options of one attempt, see {@link AttemptOptions}). Once Vert.x is upgraded past the fix of
 * #1608, {@code NetClientOptions#setConnectTimeout} bounds the TCP connect, but nothing there
 * bounds the start-up exchange, so this driver stays until a timeout for the whole attempt exists.
 */
final class ConnectDeadlinePgDriver extends PgDriver {
  private final long deadlineMs;

  /** @param deadlineMs how long one attempt may take, TCP connect, TLS and start-up exchange together */
  ConnectDeadlinePgDriver(long deadlineMs) {
    if (deadlineMs <= 0) {
      throw new IllegalArgumentException("deadlineMs must be positive: " + deadlineMs);
    }
    this.deadlineMs = deadlineMs;
  }

  @Override
  public ConnectionFactory<PgConnectOptions> createConnectionFactory(Vertx vertx, NetClientOptions transportOptions) {
    return new DeadlineConnectionFactory((VertxInternal) vertx, transportOptions, deadlineMs);
  }

  /**
   * The stock factory, each of whose connects has a deadline. Connections are made by the stock
   * factory and keep it as theirs (the pool and {@code PgDriver#wrapConnection} need it, and cancel
   * requests go through it), so only the attempts pass through here.
   */
  private static final class DeadlineConnectionFactory implements ConnectionFactory<PgConnectOptions> {
    private final VertxInternal vertx;
    private final long deadlineMs;
    private final PgConnectionFactory stock;
    /**
     * The attempts under way, by the address object their options carry (by identity: attempts to
     * the same server have equal addresses), so that the TCP client finds the attempt of a connect.
     */
    private final Map<SocketAddress, Attempt> attempts = Collections.synchronizedMap(new IdentityHashMap<>());

    DeadlineConnectionFactory(VertxInternal vertx, NetClientOptions transportOptions, long deadlineMs) {
      this.vertx = vertx;
      this.deadlineMs = deadlineMs;
      NetClientOptions transport = transportOptions != null ? transportOptions : new NetClientOptions();
      this.stock = new PgConnectionFactory(new VertxWrapper(vertx) {
        @Override
        public NetClient createNetClient(NetClientOptions ignored) {
          // The stock factory asks for a client with default options (its constructor has no others);
          // it gets the pool's, without reconnection, as it would ask once #1608 is fixed.
          return new AttemptAwareNetClient(vertx.createNetClient(new NetClientOptions(transport).setReconnectAttempts(0)));
        }
      });
    }

    /**
     * What the interface's default does, said here so that the options, once resolved, go through
     * this factory's deadline and not straight to the stock factory. The pool's options come from a
     * future that is already complete (one server), so the deadline starts with the attempt itself.
     */
    @Override
    public Future<SqlConnection> connect(Context context, Future<PgConnectOptions> options) {
      PromiseInternal<PgConnectOptions> resolved = ((ContextInternal) context).promise();
      options.onComplete(resolved);
      return resolved.future().compose(o -> connect(context, o));
    }

    @Override
    public Future<SqlConnection> connect(Context context, PgConnectOptions options) {
      AttemptOptions attemptOptions = new AttemptOptions(options);
      Attempt attempt = new Attempt(((ContextInternal) context).promise(), options.getHost() + ":" + options.getPort(),
          System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(deadlineMs));
      attempts.put(attemptOptions.getSocketAddress(), attempt);
      attempt.timerId = vertx.setTimer(deadlineMs, id -> attempt.expire(deadlineMs));
      Future<SqlConnection> connecting;
      try {
        connecting = stock.connect(context, attemptOptions);
      } catch (RuntimeException e) {
        connecting = Future.failedFuture(e);
      }
      connecting.onComplete(result -> {
        vertx.cancelTimer(attempt.timerId);
        attempts.remove(attemptOptions.getSocketAddress());
        attempt.ended(result);
      });
      // Every connection the pool gets is one whose session, once refused a write as read-only, is
      // left (ReadOnlySessions).
      return attempt.result.future().map(opened -> ReadOnlySessions.watched((ContextInternal) context, stock, opened));
    }

    @Override
    public void close(Completable<Void> completion) {
      stock.close(completion);
    }

    /**
     * The TCP client of the stock factory: a connect made for an attempt is given the attempt's time
     * left as its timeout (none left: it fails at once), and its socket is recorded by the attempt,
     * which closes it if the deadline passes first. Every other call is the client's own.
     */
    private final class AttemptAwareNetClient implements NetClient {
      private final NetClient client;

      AttemptAwareNetClient(NetClient client) {
        this.client = client;
      }

      @Override
      public Future<NetSocket> connect(ConnectOptions connectOptions) {
        Attempt attempt = connectOptions.getRemoteAddress() == null ? null
            : attempts.get(connectOptions.getRemoteAddress());
        if (attempt == null) {
          return client.connect(connectOptions); // a cancel request, or not through this factory
        }
        long leftMs = attempt.millisLeft();
        if (leftMs <= 0) {
          return Future.failedFuture(attempt.deadlinePassed(deadlineMs));
        }
        return client.connect(new ConnectOptions(connectOptions).setTimeout((int) Math.min(Integer.MAX_VALUE, leftMs)))
            .onSuccess(attempt::opened);
      }

      @Override
      public Future<NetSocket> connect(int port, String host) {
        return client.connect(port, host);
      }

      @Override
      public Future<NetSocket> connect(int port, String host, String serverName) {
        return client.connect(port, host, serverName);
      }

      @Override
      public Future<NetSocket> connect(SocketAddress remoteAddress) {
        return client.connect(remoteAddress);
      }

      @Override
      public Future<NetSocket> connect(SocketAddress remoteAddress, String serverName) {
        return client.connect(remoteAddress, serverName);
      }

      @Override
      public Future<Void> close() {
        return client.close();
      }

      @Override
      public Future<Void> shutdown(long timeout, TimeUnit unit) {
        return client.shutdown(timeout, unit);
      }

      @Override
      public Future<Boolean> updateSSLOptions(ClientSSLOptions options, boolean force) {
        return client.updateSSLOptions(options, force);
      }

      @Override
      public boolean isMetricsEnabled() {
        return client.isMetricsEnabled();
      }
    }
  }

  /**
   * One attempt to open a connection. Its outcome is decided once: by the stock factory's, or by
   * the deadline, whichever comes first (the promise's try-methods decide the race).
   */
  private static final class Attempt {
    final PromiseInternal<SqlConnection> result;
    /** host:port, for the message of a deadline passed (the options' password never goes near it). */
    private final String target;
    private final long deadlineNanos;
    volatile long timerId = -1;
    /** The sockets its TCP connects opened (two when sslmode=prefer or allow falls back), until it ends. */
    private final List<NetSocket> sockets = new ArrayList<>(2);
    private boolean expired;

    Attempt(PromiseInternal<SqlConnection> result, String target, long deadlineNanos) {
      this.result = result;
      this.target = target;
      this.deadlineNanos = deadlineNanos;
    }

    long millisLeft() {
      return TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime());
    }

    VertxException deadlinePassed(long deadlineMs) {
      return new VertxException("PostgreSQL connection to " + target + " not ready within " + deadlineMs
          + " ms (TCP connect, TLS and start-up exchange): the attempt is given up", true);
    }

    /** A socket its TCP connect opened: kept to be closed at the deadline, or closed now if that has passed. */
    void opened(NetSocket socket) {
      boolean late;
      synchronized (this) {
        late = expired;
        if (!late) {
          sockets.add(socket);
        }
      }
      if (late) {
        abort(socket);
      }
    }

    /** The channel under a connection of the stock factory; null if it is not known how to reach it (then nothing is closed). */
    private static Channel channelOf(SqlConnection connection) {
      if (connection instanceof SqlConnectionInternal internal
          && internal.unwrap() instanceof SocketConnectionBase socketConnection) {
        return socketConnection.socket().channelHandlerContext().channel();
      }
      return null;
    }

    /**
     * Closes the socket at once. Not {@code NetSocket#close}: once the start-up exchange has begun,
     * the PostgreSQL codec in the pipeline turns a close into a Terminate message and waits for the
     * server to hang up, which a server that does not answer never does. Closing from the first
     * handler of the pipeline passes no handler (TLS included) on the way to the socket.
     */
    static void abort(NetSocket socket) {
      ChannelHandlerContext first = ((NetSocketInternal) socket).channelHandlerContext().pipeline().firstContext();
      if (first != null) {
        first.close();
      } else {
        socket.close();
      }
    }

    /**
     * The deadline: unless the attempt has ended, it fails, and its sockets are closed (which ends the
     * stock factory's attempt too: a start-up exchange fails when its socket closes).
     */
    void expire(long deadlineMs) {
      if (!result.tryFail(deadlinePassed(deadlineMs))) {
        return;
      }
      List<NetSocket> open;
      synchronized (this) {
        expired = true;
        open = List.copyOf(sockets);
        sockets.clear();
      }
      open.forEach(Attempt::abort);
    }

    /**
     * The stock factory's outcome: the attempt's, unless the deadline came first; a connection after
     * it is closed. Any other socket the attempt opened is closed too: with sslmode=prefer, a server
     * that refuses TLS leaves the stock factory's first socket open, and it stayed so until the
     * server gave up waiting for a start-up message (authentication_timeout, 60 s by default).
     */
    void ended(AsyncResult<SqlConnection> outcome) {
      List<NetSocket> opened;
      synchronized (this) {
        opened = List.copyOf(sockets);
        sockets.clear();
      }
      Channel kept = outcome.succeeded() ? channelOf(outcome.result()) : null;
      if (outcome.failed() || kept != null) {
        for (NetSocket socket : opened) {
          if (((NetSocketInternal) socket).channelHandlerContext().channel() != kept) {
            abort(socket);
          }
        }
      }
      if (outcome.succeeded()) {
        if (!result.tryComplete(outcome.result())) {
          outcome.result().close();
        }
      } else {
        result.tryFail(outcome.cause());
      }
    }
  }

  /**
   * The options of one attempt: a copy whose server address is one object, created here, that the
   * stock factory puts on every TCP connect of the attempt ({@code PgConnectionFactory} asks for it
   * once per attempt and connects to it, again when sslmode=prefer or allow falls back), so that the
   * TCP client can tell whose connect it is making.
   */
  static final class AttemptOptions extends PgConnectOptions {
    private final SocketAddress address;

    AttemptOptions(PgConnectOptions options) {
      super(options);
      // Vert.x 5.0.7's copy constructor leaves this one out.
      setUseLayer7Proxy(options.getUseLayer7Proxy());
      address = super.getSocketAddress();
    }

    @Override
    public SocketAddress getSocketAddress() {
      return address;
    }
  }
}
