package dev.idemgate.storage;

import io.vertx.pgclient.PgConnectOptions;
import java.sql.SQLException;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.configuration.FluentConfiguration;
import org.flywaydb.core.api.output.MigrateResult;
import org.flywaydb.database.postgresql.PostgreSQLConfigurationExtension;

/**
 * Creates and migrates the schema with Flyway. Runs on the caller's thread over JDBC, so it is
 * called at start-up before any verticle is deployed, never on an event loop. Flyway takes a
 * PostgreSQL advisory lock, so instances starting together migrate once.
 */
public final class Migrations {
  /**
   * The deadline of each read while migrating. A migration may rightly run for minutes (an index
   * built on a large table sends nothing back until done), so this is long; it is there so that a
   * network gone silent mid-migration ends start-up instead of blocking it for ever. Opening the
   * connection has its own short deadline ({@link Postgres#JDBC_LOGIN_TIMEOUT_SECONDS}).
   */
  static final int SOCKET_TIMEOUT_SECONDS = 1_800;

  private Migrations() {}

  /** Migrates and returns the number of migrations applied; fails with {@link StoreUnreachable}. */
  public static int migrate(String pgUrl) {
    PgConnectOptions o = Postgres.connectOptions(pgUrl);
    try {
      FluentConfiguration flyway = Flyway.configure()
          .dataSource(Postgres.jdbcDataSource(pgUrl, "idemgate-migrations", Postgres.JDBC_LOGIN_TIMEOUT_SECONDS,
              SOCKET_TIMEOUT_SECONDS))
          .connectRetries(0)
          .schemas(Postgres.SCHEMA)
          .createSchemas(true)
          .locations("classpath:db/migration");
      // Flyway's lock on PostgreSQL is by default an advisory lock held in an open transaction of
      // its own; CREATE INDEX CONCURRENTLY (V9) waits for every transaction open when it starts,
      // that one included, so the migration would wait for ever. A session lock does not.
      flyway.getConfigurationExtension(PostgreSQLConfigurationExtension.class).setTransactionalLock(false);
      MigrateResult result = flyway.load().migrate();
      return result.migrationsExecuted;
    } catch (RuntimeException e) {
      throw new StoreUnreachable("PostgreSQL at " + o.getHost() + ":" + o.getPort() + "/" + o.getDatabase()
          + " cannot be reached or migrated: " + rootMessage(e));
    }
  }

  private static String rootMessage(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && !(t instanceof SQLException)) {
      t = t.getCause();
    }
    String message = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
    String line = message.lines().findFirst().orElse(message);
    // pgJDBC's words for its login timeout do not say that the server was silent, nor for how long.
    return line.startsWith("Connection attempt timed out")
        ? "no answer to connect and log in within " + Postgres.JDBC_LOGIN_TIMEOUT_SECONDS + " s" : line;
  }

  /** A store that start-up cannot use; the message is one line for the operator. */
  public static final class StoreUnreachable extends RuntimeException {
    public StoreUnreachable(String message) {
      super(message);
    }
  }
}
