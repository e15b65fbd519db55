package dev.idemgate.storage;

import io.vertx.core.Completable;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.net.SocketAddress;
import io.vertx.core.spi.metrics.ClientMetrics;
import io.vertx.core.tracing.TracingPolicy;
import io.vertx.pgclient.PgException;
import io.vertx.pgclient.impl.PgConnectionFactory;
import io.vertx.pgclient.impl.PgConnectionImpl;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import io.vertx.sqlclient.internal.Connection;
import io.vertx.sqlclient.internal.SqlConnectionInternal;
import io.vertx.sqlclient.internal.command.CommandBase;
import io.vertx.sqlclient.internal.command.CompositeCommand;
import io.vertx.sqlclient.spi.DatabaseMetadata;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Pool connections whose session takes no writes are closed, never used again. Whether a session
 * takes writes is decided when it starts and stays so for its life: a session opened while writes
 * were frozen ({@code ALTER DATABASE|ROLE ... SET default_transaction_read_only = on}) keeps the
 * setting after the freeze is lifted ({@code RESET} reaches new sessions only), and one opened on a
 * standby, or on an old primary a failover left behind the address, stays there. A pool connection
 * closes only after half the read-idle time unused ({@link Postgres#readIdle}, 12 s at the defaults),
 * so probes and payments that keep coming kept such connections for ever: after a freeze ended,
 * readiness stayed DOWN and every payment was answered 503 for as long as traffic went on
 * (WriteFreezeLiftedIT). Now the pool forgets a connection once PostgreSQL refuses a statement on
 * it as read-only ({@link #refusedAsReadOnly}) or the readiness check finds it read-only ({@link
 * #leave}), and closes it; the next statement opens a session that reads the setting as it is now.
 * The refused statement itself failed too (a claim's 503, one per such connection after a freeze):
 * a statement sent through {@link #execute} (the stores' statements on their pools) is now sent again
 * on a new session, and fails only if that one refuses it as well (writes still frozen).
 *
 * <p>Why here, under the pool: the request path sends its statements through {@code
 * Pool#preparedQuery} (one connection per statement, picked by the pool and never seen by the
 * caller), recovery through {@code withTransaction}, readiness through {@code withConnection}.
 * Each of them ends in the pool's {@code schedule} of a command on the connection the pool holds,
 * which this class wraps ({@link ConnectDeadlinePgDriver} hands the pool every connection wrapped),
 * so one rule covers every path, with no statement and no round trip added: a refused command's
 * completion is looked at before its caller sees it, and the pool has forgotten the connection
 * before it could lend it again.
 *
 * <p>Hazard: built on the client's internals ({@code Connection}, the pool's {@code Holder}), as
 * {@link Postgres#closeWhenSilent} is; {@code PgConnection#cancelRequest} on a connection taken from
 * the pool is not supported (its cast to the socket connection finds this wrapper; the gateway never
 * cancels). While writes stay frozen every refused statement costs a new session (a connect and a
 * login, milliseconds), and one sent through {@link #execute} two; readiness is DOWN then, so traffic
 * has left the pod.
 */
final class ReadOnlySessions {
  /**
   * SQLSTATE read_only_sql_transaction: "cannot execute INSERT in a read-only transaction" (a session
   * under default_transaction_read_only, or any session of a standby), "cannot execute ... during
   * recovery" and "cannot set transaction read-write mode during recovery" (a standby). The other
   * codes a read-only server gives do not belong to the session: 25P02 (in_failed_sql_transaction)
   * follows any error inside a transaction and ends with its rollback, 40001 for a standby's
   * recovery conflicts is one statement's, and 57P03 (cannot_connect_now) refuses the connection
   * itself, which never joins the pool.
   */
  static final String READ_ONLY_SQL_TRANSACTION = "25006";

  private ReadOnlySessions() {}

  /** Whether PostgreSQL refused a statement because its session takes no writes. */
  static boolean refusedAsReadOnly(Throwable failure) {
    return failure instanceof PgException pg && READ_ONLY_SQL_TRANSACTION.equals(pg.getSqlState());
  }

  /**
   * One statement on a connection of {@code pool}; if PostgreSQL refuses it as read-only, it is sent
   * again on a new session ({@link #againOnANewSession}). Safe because a statement sent through a
   * pool is a transaction of its own (the pool lends a connection for it alone, and the extended
   * protocol carries one statement per Sync): a refusal, wherever in the statement it comes
   * (PostgreSQL checks before it touches a row that a writing statement, its data-modifying WITH
   * parts included, may write), rolls back all of it, so nothing of it was written. Not so for a
   * statement on a connection the caller holds, perhaps inside a transaction whose earlier
   * statements the refusal rolled back too: this takes a pool, never a connection. Nothing is added
   * when the statement is not refused.
   */
  static Future<RowSet<Row>> execute(Pool pool, String sql, Tuple params, long timeoutMs) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
    return pool.preparedQuery(sql).execute(params).recover(failure -> refusedAsReadOnly(failure)
        ? againOnANewSession(pool, sql, params, System.nanoTime(), deadline)
        : Future.failedFuture(failure));
  }

  /**
   * Sends the statement refused at {@code refusedAt} (nanoTime) again, until a session opened after
   * that moment has answered it: the first such session reads the setting as it is now, and if it
   * refuses too, writes are still frozen and the refusal stands (the database is not asked again).
   * The pool may lend first other sessions opened before the refusal, idle in it: those opened
   * during the same freeze refuse too and are left as the first was; one that takes writes answers.
   * Each lent session that refuses is left and never lent again, so this ends after at most the
   * pool's size of those, and one new session.
   */
  private static Future<RowSet<Row>> againOnANewSession(Pool pool, String sql, Tuple params, long refusedAt,
      long deadline) {
    if (System.nanoTime() - deadline >= 0) {
      return pastTheDeadline();
    }
    AtomicBoolean openedBefore = new AtomicBoolean();
    return pool.withConnection(connection -> {
          if (System.nanoTime() - deadline >= 0) {
            // The pool may lend a connection long after it was asked (a full pool's queue, a slow
            // connect): checked again just before the statement goes.
            return pastTheDeadline();
          }
          LeftWhenReadOnly watched = watchOf(connection);
          // A connection not of ConnectDeadlinePgDriver's is not known to be older: it counts as new.
          openedBefore.set(watched != null && watched.openedAt - refusedAt < 0);
          return connection.preparedQuery(sql).execute(params);
        })
        .recover(failure -> refusedAsReadOnly(failure) && openedBefore.get()
            ? againOnANewSession(pool, sql, params, refusedAt, deadline)
            : Future.failedFuture(failure));
  }

  /**
   * The caller has answered by now (a 503 for a claim): a statement sent after that could still
   * write, behind an answer that said it had not. A resend sent before it can still commit after
   * it, as the first attempt could.
   */
  private static <T> Future<T> pastTheDeadline() {
    return Future.failedFuture(new TimeoutException("refused as read-only, and the deadline passed before it could "
        + "be sent on a new session"));
  }

  /**
   * A connection of the stock factory, freshly opened, as the pool is to hold it: the same
   * connection, its commands watched. Called on the connection's event loop (as the pool's own
   * calls to it are).
   */
  static SqlConnection watched(ContextInternal context, PgConnectionFactory factory, SqlConnection opened) {
    Connection socketConnection = ((SqlConnectionInternal) opened).unwrap();
    LeftWhenReadOnly watched = new LeftWhenReadOnly(socketConnection);
    PgConnectionImpl connection = new PgConnectionImpl(factory, context, watched);
    socketConnection.init(watched);
    watched.init(connection);
    return connection;
  }

  /**
   * Takes the pool connection under {@code connection} (one of a pool of {@link Postgres}, lent by
   * {@code getConnection} or {@code withConnection}) out of its pool and closes it: for a session
   * found read-only without a statement being refused (the readiness check asks, it does not
   * write). The caller still closes {@code connection} as usual, which then returns nothing to the
   * pool. False, and nothing done, for a connection not from such a pool.
   */
  static boolean leave(SqlConnection connection) {
    LeftWhenReadOnly watched = watchOf(connection);
    if (watched == null) {
      return false;
    }
    watched.leave();
    return true;
  }

  /** The watch under a pool connection, or null for a connection not made by {@link #watched}. */
  private static LeftWhenReadOnly watchOf(SqlConnection connection) {
    if (!(connection instanceof SqlConnectionInternal internal)) {
      return null;
    }
    Connection c = internal.unwrap();
    while (!(c instanceof LeftWhenReadOnly)) {
      Connection inner = c.unwrap();
      if (inner == c) {
        return null;
      }
      c = inner;
    }
    return (LeftWhenReadOnly) c;
  }

  /**
   * The socket connection, as the pool sees it, with every command's outcome looked at first. It
   * stands between the socket connection and the pool's holder, so that it can take the connection
   * out of the pool before the outcome reaches the caller (who then gives the connection back).
   * Everything else is the socket connection's own.
   */
  private static final class LeftWhenReadOnly implements Connection, Connection.Holder {
    private final Connection socketConnection;
    /** When the session was ready ({@link System#nanoTime()}): its read-only setting is the one of that moment or before. */
    final long openedAt = System.nanoTime();
    /** The pool's holder of the connection (set by the pool when it takes it); told of the events of the socket. */
    private Holder holder;
    /** Taken out of its pool: the socket's later close is not told to it again. */
    private final AtomicBoolean left = new AtomicBoolean();

    LeftWhenReadOnly(Connection socketConnection) {
      this.socketConnection = socketConnection;
    }

    @Override
    public <R> void schedule(CommandBase<R> cmd, Completable<R> handler) {
      if (cmd instanceof CompositeCommand composite) {
        // SqlClient#group: the commands of the group complete through their own handlers.
        composite.commands().forEach(this::watchOwnHandler);
      }
      socketConnection.schedule(cmd, watch(handler));
    }

    private <R> void watchOwnHandler(CommandBase<R> cmd) {
      cmd.handler = watch(cmd.handler);
    }

    private <R> Completable<R> watch(Completable<R> handler) {
      if (handler == null) {
        return null;
      }
      return (result, failure) -> {
        if (failure != null && refusedAsReadOnly(failure)) {
          leave();
        }
        handler.complete(result, failure);
      };
    }

    /**
     * Out of the pool first (what the pool does for a connection whose socket closed), so that it
     * cannot be lent again even for a moment; then closed (on the connection's event loop, which
     * the socket connection's close goes to by itself).
     */
    void leave() {
      if (!left.compareAndSet(false, true)) {
        return;
      }
      Holder pool = holder;
      if (pool != null) {
        pool.handleClosed();
      }
      socketConnection.close(this, Promise.promise());
    }

    @Override
    public void init(Holder holder) {
      this.holder = holder;
    }

    @Override
    public void handleClosed() {
      Holder pool = holder;
      if (!left.get() && pool != null) {
        pool.handleClosed();
      }
    }

    @Override
    public void handleEvent(Object event) {
      Holder pool = holder;
      if (pool != null) {
        pool.handleEvent(event);
      }
    }

    @Override
    public void handleException(Throwable err) {
      Holder pool = holder;
      if (!left.get() && pool != null) {
        pool.handleException(err);
      }
    }

    @Override
    public void close(Holder holder, Completable<Void> promise) {
      socketConnection.close(this, promise);
    }

    @Override
    public boolean isIndeterminatePreparedStatementError(Throwable error) {
      return socketConnection.isIndeterminatePreparedStatementError(error);
    }

    @Override
    public TracingPolicy tracingPolicy() {
      return socketConnection.tracingPolicy();
    }

    @Override
    public SocketAddress server() {
      return socketConnection.server();
    }

    @Override
    public String system() {
      return socketConnection.system();
    }

    @Override
    public String database() {
      return socketConnection.database();
    }

    @Override
    public String user() {
      return socketConnection.user();
    }

    @Override
    public ClientMetrics metrics() {
      return socketConnection.metrics();
    }

    @Override
    public boolean isSsl() {
      return socketConnection.isSsl();
    }

    @Override
    public boolean isValid() {
      return !left.get() && socketConnection.isValid();
    }

    @Override
    public int pipeliningLimit() {
      return socketConnection.pipeliningLimit();
    }

    @Override
    public DatabaseMetadata getDatabaseMetaData() {
      return socketConnection.getDatabaseMetaData();
    }

    @Override
    public int getProcessId() {
      return socketConnection.getProcessId();
    }

    @Override
    public int getSecretKey() {
      return socketConnection.getSecretKey();
    }

    @Override
    public Connection unwrap() {
      return socketConnection.unwrap();
    }
  }
}
