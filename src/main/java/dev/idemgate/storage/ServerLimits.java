package dev.idemgate.storage;

import dev.idemgate.config.GatewayConfig;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A start-up look at the PostgreSQL server's settings that decide whether the gateway can run well
 * on it, each found wrong logged as a WARN naming the setting to change; nothing stops start-up.
 *
 * <ul>
 *   <li><b>Connections.</b> Each instance's pools may open {@link #connectionsPerInstance} connections
 *       under load. Past the server's {@code max_connections} (less the slots kept for superusers),
 *       a connection that cannot be opened makes payments fail with 503 {@code store_unavailable},
 *       on every instance at once, and only at peak.
 *   <li><b>Autovacuum.</b> The retention purge deletes as many keys as payments insert; without
 *       autovacuum the dead rows are never reclaimed and the table and its indexes grow without end.
 * </ul>
 */
public final class ServerLimits {
  private static final Logger log = LoggerFactory.getLogger(ServerLimits.class);
  /**
   * Connections an instance opens beside the API verticles' pools: management 2, recovery 2, and
   * reconciliation's JDBC work on at most four threads (two for runs, two for reads).
   */
  static final int OTHER_CONNECTIONS = 8;
  private static final int TIMEOUT_SECONDS = 5;

  /**
   * What the server says, read in one query. {@code reservedSlots} are kept for superusers (and, from
   * PostgreSQL 16, for roles granted pg_use_reserved_connections). A limit of -1 means none.
   */
  record Settings(int maxConnections, int reservedSlots, boolean superuser, int roleLimit, int databaseLimit,
      Others others, boolean autovacuum, boolean keysAutovacuum) {

    /** Connections this role may open on this database, others' aside. */
    int usable() {
      return room(0, 0, 0);
    }

    /**
     * What is left for this instance now: of the server's slots, less every other client's; of the
     * role's and the database's limits, less that role's and that database's other sessions.
     */
    int left() {
      return Math.max(0, room(others.onServer(), others.ofRole(), others.onDatabase()));
    }

    private int room(int takenOnServer, int takenByRole, int takenOnDatabase) {
      int room = maxConnections - (superuser ? 0 : reservedSlots) - takenOnServer;
      if (roleLimit >= 0 && !superuser) {
        room = Math.min(room, roleLimit - takenByRole);
      }
      if (databaseLimit >= 0 && !superuser) {
        room = Math.min(room, databaseLimit - takenOnDatabase);
      }
      return room;
    }
  }

  /** Client sessions other than this check's: on the server, of this role, on this database. */
  record Others(int onServer, int ofRole, int onDatabase) {}

  private ServerLimits() {}

  /** The most connections one instance's pools open: the API verticles' pools and the rest. */
  public static int connectionsPerInstance(GatewayConfig config) {
    return config.effectiveApiInstances() * config.pgPoolSize() + OTHER_CONNECTIONS;
  }

  /**
   * Reads the settings and logs what it finds. Blocks up to a few seconds: call it at start-up,
   * before any verticle is deployed, never on an event loop. A failure to read is logged and ignored.
   */
  public static void check(GatewayConfig config) {
    Settings settings;
    try {
      settings = read(config.pgUrl());
    } catch (SQLException | RuntimeException e) {
      log.info("PostgreSQL's connection and autovacuum settings could not be read, so they are not checked: {}",
          String.valueOf(e.getMessage()).lines().findFirst().orElse(""));
      return;
    }
    int perInstance = connectionsPerInstance(config);
    log.info("PostgreSQL allows this gateway {} connections, {} in use by other clients now; one instance opens "
        + "up to {} ({} API verticles x pg_pool_size {} + {}): {} instances fit, rolling updates included",
        settings.usable(), settings.others().onServer(), perInstance, config.effectiveApiInstances(), config.pgPoolSize(),
        OTHER_CONNECTIONS, settings.usable() / perInstance);
    for (String warning : warnings(settings, perInstance)) {
      log.warn(warning);
    }
  }

  /** What is wrong with the settings for one instance needing {@code perInstance} connections. */
  static List<String> warnings(Settings settings, int perInstance) {
    List<String> warnings = new ArrayList<>();
    int usable = settings.usable();
    String remedy = "lower pg_pool_size or api_instances, or raise max_connections";
    if (perInstance > usable) {
      warnings.add("PostgreSQL allows this gateway " + usable + " connections, but one instance opens up to "
          + perInstance + ": under load, payments will fail with 503 store_unavailable; " + remedy);
    } else if (perInstance > settings.left()) {
      warnings.add("PostgreSQL allows this gateway " + usable + " connections; those other clients hold now leave "
          + settings.left() + ", and this instance opens up to " + perInstance + ": under load, payments will fail "
          + "with 503 store_unavailable; " + remedy);
    }
    if (!settings.autovacuum()) {
      warnings.add("PostgreSQL runs with autovacuum off: the keys the retention purge deletes are never "
          + "reclaimed, and the keys table and its indexes grow without end; turn autovacuum on "
          + "(docs/operations.md, PostgreSQL)");
    } else if (!settings.keysAutovacuum()) {
      warnings.add("autovacuum is off for table " + Postgres.SCHEMA + ".idempotency_keys (autovacuum_enabled=false): "
          + "the keys the retention purge deletes are never reclaimed; reset it with ALTER TABLE "
          + Postgres.SCHEMA + ".idempotency_keys RESET (autovacuum_enabled)");
    }
    return warnings;
  }

  static Settings read(String pgUrl) throws SQLException {
    // reserved_connections (PostgreSQL 16) keeps slots for pg_use_reserved_connections; read
    // missing_ok so that 15 and older answer 0.
    String sql = """
        SELECT current_setting('max_connections')::int,
               current_setting('superuser_reserved_connections')::int
                 + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int,
               r.rolsuper, r.rolconnlimit, d.datconnlimit,
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int,
               (SELECT count(*) FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename = current_user)::int,
               (SELECT count(*) FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname = current_database())::int,
               current_setting('autovacuum')::boolean,
               NOT EXISTS (SELECT 1 FROM pg_class c, unnest(c.reloptions) AS option
                 WHERE c.oid = to_regclass(?) AND CASE WHEN option LIKE 'autovacuum\\_enabled=%'
                   THEN NOT split_part(option, '=', 2)::boolean ELSE false END)
        FROM pg_roles r, pg_database d
        WHERE r.rolname = current_user AND d.datname = current_database()
        """;
    try (Connection c = Postgres.jdbcConnection(pgUrl, "idemgate-start-up-check", TIMEOUT_SECONDS, TIMEOUT_SECONDS);
        PreparedStatement statement = c.prepareStatement(sql)) {
      statement.setQueryTimeout(TIMEOUT_SECONDS);
      statement.setString(1, Postgres.SCHEMA + ".idempotency_keys");
      try (ResultSet row = statement.executeQuery()) {
        if (!row.next()) {
          throw new SQLException("no row for the current role and database");
        }
        return new Settings(row.getInt(1), row.getInt(2), row.getBoolean(3), row.getInt(4), row.getInt(5),
            new Others(row.getInt(6), row.getInt(7), row.getInt(8)), row.getBoolean(9), row.getBoolean(10));
      }
    }
  }
}
