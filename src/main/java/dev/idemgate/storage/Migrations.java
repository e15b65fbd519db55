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
 *
 * <p>The lock is a session lock, taken by polling {@code pg_try_advisory_lock}, not Flyway's default
 * transactional one: a migration that builds an index CONCURRENTLY (outside a transaction, so that a
 * live table is not locked for writes) waits for every older transaction to end, and would wait
 * forever for the transaction that holds a transactional lock.
 */
public final class Migrations {
  private Migrations() {}

  /** Migrates and returns the number of migrations applied; fails with {@link StoreUnreachable}. */
  public static int migrate(String pgUrl) {
    PgConnectOptions o = Postgres.connectOptions(pgUrl);
    try {
      FluentConfiguration configuration = Flyway.configure()
          .dataSource(Postgres.jdbcUrl(pgUrl), o.getUser(), o.getPassword())
          .connectRetries(0)
          .schemas(Postgres.SCHEMA)
          .createSchemas(true)
          .locations("classpath:db/migration");
      // Through the extension, not configuration(Map): that path needs jackson-databind, which the
      // packaged jar does not hold (the tests' classpath does, so only the jar failed).
      configuration.getConfigurationExtension(PostgreSQLConfigurationExtension.class).setTransactionalLock(false);
      MigrateResult result = configuration.load().migrate();
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
    return message.lines().findFirst().orElse(message);
  }

  /** A store that start-up cannot use; the message is one line for the operator. */
  public static final class StoreUnreachable extends RuntimeException {
    public StoreUnreachable(String message) {
      super(message);
    }
  }
}
