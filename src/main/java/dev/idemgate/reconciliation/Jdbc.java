package dev.idemgate.reconciliation;

import dev.idemgate.storage.Postgres;
import io.vertx.pgclient.PgConnectOptions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Properties;

/**
 * JDBC connections for reconciliation. It is batch work (COPY of a whole file, set-based joins),
 * so it runs on the CLI's main thread or on a worker thread of the management port, never on an
 * event loop, and uses the driver that gives it COPY.
 */
final class Jdbc {
  private Jdbc() {}

  static Connection connect(String pgUrl) throws SQLException {
    PgConnectOptions o = Postgres.connectOptions(pgUrl);
    Properties props = new Properties();
    if (o.getUser() != null) {
      props.setProperty("user", o.getUser());
    }
    if (o.getPassword() != null) {
      props.setProperty("password", o.getPassword());
    }
    props.setProperty("ApplicationName", "idemgate-reconciliation");
    props.setProperty("connectTimeout", "10");
    // A remote call needs a deadline: without one, a network that goes silent mid-run blocks the
    // CLI, or one of the management port's two worker threads, for ever. No statement of a run
    // sends nothing for this long (a whole 1,000,000-row run takes about 40 s); keepalive lets the
    // kernel notice a dead peer first.
    props.setProperty("socketTimeout", "900");
    props.setProperty("tcpKeepAlive", "true");
    return DriverManager.getConnection(Postgres.jdbcUrl(pgUrl), props);
  }
}
