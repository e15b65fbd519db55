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
    return DriverManager.getConnection(Postgres.jdbcUrl(pgUrl), props);
  }
}
