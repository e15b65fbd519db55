package dev.idemgate.reconciliation;

import dev.idemgate.storage.Postgres;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * JDBC connections for reconciliation. It is batch work (COPY of a whole file, set-based joins),
 * so it runs on the CLI's main thread or on a worker thread of the management port, never on an
 * event loop, and uses the driver that gives it COPY.
 */
final class Jdbc {
  /**
   * The deadline of each read: without one, a network that goes silent mid-run blocks the CLI, or
   * a worker thread of the management port, for ever. No statement of a run sends nothing for this
   * long (a whole 1,000,000-row run takes about 40 s). Opening a connection has its own short
   * deadline, so a PostgreSQL that accepts and never answers fails a run in seconds.
   */
  private static final int SOCKET_TIMEOUT_SECONDS = 900;

  /**
   * PostgreSQL's own TCP keepalive on these connections, for a client gone while its session is not
   * idle (mid-COPY, the server waiting for the file's next rows): probes after 60 s of silence, 10 s
   * apart, the peer given up after 6 unanswered, about two minutes in all. Ignored on a Unix socket.
   * A session idle in a transaction that holds locks is ended sooner ({@link Reconciler#IDLE_IN_TRANSACTION}).
   */
  private static final String SERVER_KEEPALIVE =
      "SET tcp_keepalives_idle = 60; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 6";

  private Jdbc() {}

  static Connection connect(String pgUrl) throws SQLException {
    Connection c = Postgres.jdbcConnection(pgUrl, "idemgate-reconciliation", Postgres.JDBC_LOGIN_TIMEOUT_SECONDS,
        SOCKET_TIMEOUT_SECONDS);
    try (Statement s = c.createStatement()) {
      s.execute(SERVER_KEEPALIVE);
    } catch (SQLException | RuntimeException e) {
      c.close();
      throw e;
    }
    return c;
  }
}
