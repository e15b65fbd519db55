package dev.idemgate.reconciliation;

import dev.idemgate.storage.Postgres;
import java.sql.Connection;
import java.sql.SQLException;

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

  private Jdbc() {}

  static Connection connect(String pgUrl) throws SQLException {
    return Postgres.jdbcConnection(pgUrl, "idemgate-reconciliation", Postgres.JDBC_LOGIN_TIMEOUT_SECONDS,
        SOCKET_TIMEOUT_SECONDS);
  }
}
