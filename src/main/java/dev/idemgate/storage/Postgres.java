package dev.idemgate.storage;

import dev.idemgate.config.GatewayConfig;
import io.vertx.core.Vertx;
import io.vertx.pgclient.PgBuilder;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;

/** Builds the reactive PostgreSQL pools of the gateway from its URL. */
public final class Postgres {
  /** Schema that holds every table of the gateway. */
  public static final String SCHEMA = "idemgate";

  private Postgres() {}

  public static PgConnectOptions connectOptions(String url) {
    PgConnectOptions options = PgConnectOptions.fromUri(url.replaceFirst("^postgres://", "postgresql://"));
    return options
        .setReconnectAttempts(0)
        .setPipeliningLimit(256)
        .setCachePreparedStatements(true)
        .setPreparedStatementCacheMaxSize(256);
  }

  /** A pool owned by one verticle: the caller closes it in {@code stop()}. */
  public static Pool pool(Vertx vertx, GatewayConfig config, int maxSize) {
    PoolOptions pool = new PoolOptions()
        .setMaxSize(maxSize)
        .setMaxWaitQueueSize(4_096)
        .setConnectionTimeout((int) config.storeTimeout().toMillis())
        .setConnectionTimeoutUnit(java.util.concurrent.TimeUnit.MILLISECONDS);
    // The server abandons a statement shortly after the client stops waiting for it. Statements
    // are prepared once per connection and live as long as it does: a generic plan cached while
    // the tables were small (a new deployment) would keep scanning them whole as they grow, so
    // every execution is planned for the tables as they are.
    PgConnectOptions connect = connectOptions(config.pgUrl()).setProperties(java.util.Map.of(
        "application_name", "idemgate",
        "statement_timeout", String.valueOf(config.storeTimeout().toMillis() + 1_000),
        "plan_cache_mode", "force_custom_plan"));
    return PgBuilder.pool().with(pool).connectingTo(connect).using(vertx).build();
  }

  /** The same database as a JDBC URL, for Flyway at start-up. */
  public static String jdbcUrl(String url) {
    PgConnectOptions o = connectOptions(url);
    return "jdbc:postgresql://" + o.getHost() + ":" + o.getPort() + "/" + o.getDatabase();
  }
}
