package dev.idemgate.storage;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.config.UrlQuery;
import io.netty.handler.timeout.IdleStateHandler;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.net.ClientSSLOptions;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.pgclient.SslMode;
import io.vertx.sqlclient.ClientBuilder;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.SqlClient;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import io.vertx.sqlclient.impl.SocketConnectionBase;
import io.vertx.sqlclient.internal.Connection;
import io.vertx.sqlclient.internal.SqlConnectionInternal;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.sql.DataSource;
import org.postgresql.ds.PGSimpleDataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Builds the reactive PostgreSQL pools of the gateway from its URL. */
public final class Postgres {
  private static final Logger log = LoggerFactory.getLogger(Postgres.class);
  /** Schema that holds every table of the gateway. */
  public static final String SCHEMA = "idemgate";
  /** Longest SQL text kept prepared per connection: every statement of the gateway fits. */
  public static final int MAX_CACHED_STATEMENT_CHARS = 16 * 1024;

  private Postgres() {}

  public static PgConnectOptions connectOptions(String url) {
    String normalized = url.replaceFirst("^postgres://", "postgresql://");
    Optional<String> rootCert = UrlQuery.parameter(normalized, ROOT_CERT);
    // sslrootcert is libpq's, not the Vert.x client's: left in, it would reach the server as a
    // setting it does not know.
    PgConnectOptions options = PgConnectOptions.fromUri(UrlQuery.without(normalized, ROOT_CERT));
    SslMode mode = options.getSslMode();
    if (mode != null && mode != SslMode.DISABLE) {
      options.setSslOptions(sslOptions(mode, rootCert));
    }
    return options
        .setReconnectAttempts(0)
        .setPipeliningLimit(256)
        .setCachePreparedStatements(true)
        .setPreparedStatementCacheMaxSize(256)
        // The client caches only statements under 2,048 characters by default; the grouped claim
        // and completion are longer, and were parsed and planned again on every execution.
        .setPreparedStatementCacheSqlLimit(MAX_CACHED_STATEMENT_CHARS);
  }

  /**
   * A pool for occasional work (recovery, management) owned by one verticle: the caller closes it
   * in {@code stop()}. Statements are prepared once per connection and live as long as it does: a
   * generic plan cached while the tables were small (a new deployment) would keep scanning them
   * whole as they grow, so every execution here is planned for the tables as they are.
   */
  public static Pool pool(Vertx vertx, GatewayConfig config, int maxSize, String name) {
    return build(vertx, config, maxSize, name, Map.of("plan_cache_mode", "force_custom_plan"));
  }

  /**
   * The pool of the request path, owned by one API verticle. Planning its grouped statements cost
   * PostgreSQL about as much as running them (0.1 ms each; 30% of its CPU at 3,500 payments/s), so
   * here each statement is planned once per connection (a generic plan). A generic plan made on a
   * new deployment sees empty tables and would pick whole-table scans and hashes, then keep them
   * as the tables grow. Every statement on this pool finds its rows by key, so an index is always
   * right: the planner is told not to consider scans of whole tables or hash and merge joins, and
   * the statements are written so that no sub-select can become a hash of a table
   * (RequestPathPlansIT checks the plans on empty tables).
   * Hazard: a statement added here that cannot use an index still runs, slowly: give it an index.
   */
  public static Pool requestPool(Vertx vertx, GatewayConfig config, int maxSize, String name) {
    return build(vertx, config, maxSize, name, REQUEST_PATH_PLANNING);
  }

  /** Session settings of the request pool, also used by the test that checks its plans. */
  public static final Map<String, String> REQUEST_PATH_PLANNING = Map.of(
      "plan_cache_mode", "force_generic_plan",
      "enable_seqscan", "off",
      "enable_bitmapscan", "off",
      "enable_hashjoin", "off",
      "enable_mergejoin", "off");

  /**
   * @param name the pool's {@code pool_name} on the {@code vertx_pool_*} meters. Every pool of the
   *     process needs its own: Micrometer keeps the first gauge of a name and tags and ignores the
   *     rest (with a warning), so unnamed pools all reported as the first one created.
   */
  private static Pool build(Vertx vertx, GatewayConfig config, int maxSize, String name, Map<String, String> planning) {
    long readIdleMs = readIdle(config).toMillis();
    PoolOptions pool = new PoolOptions()
        .setName(name)
        .setMaxSize(maxSize)
        .setMaxWaitQueueSize(4_096)
        .setConnectionTimeout((int) config.storeTimeout().toMillis())
        .setConnectionTimeoutUnit(TimeUnit.MILLISECONDS)
        // A connection idle in the pool for half the read-idle time (looked for every sixteenth of
        // it) is closed before the read-idle close could meet a statement sent on it (closeWhenSilent);
        // the same rule as the Redis clients' (RedisClients.closingIdleConnections).
        .setIdleTimeout((int) (readIdleMs / 2))
        .setIdleTimeoutUnit(TimeUnit.MILLISECONDS)
        .setPoolCleanerPeriod((int) Math.max(1, readIdleMs / 16));
    PgConnectOptions connect = poolConnectOptions(config, planning);
    return poolBuilder(config).with(pool)
        .withConnectHandler(connection -> closeWhenSilent(connection, readIdleMs))
        .connectingTo(connect).using(vertx).build();
  }

  /**
   * A pool's connect options: pg_url's, with the gateway's own session settings, and no other.
   * Of the session parameters the client reads from pg_url only the application's name is kept
   * ({@link #applicationName}); {@code options} and {@code search_path} are not: the sessions that
   * claim and complete payments are the gateway's, and {@code -c synchronous_commit=off} there would
   * acknowledge claims before they are durable (ConfigLoader warns of them at start).
   */
  static PgConnectOptions poolConnectOptions(GatewayConfig config, Map<String, String> planning) {
    Map<String, String> properties = new HashMap<>(planning);
    properties.put("application_name", applicationName(config.pgUrl()));
    // The server abandons a statement shortly after the client stops waiting for it.
    properties.put("statement_timeout", String.valueOf(config.storeTimeout().toMillis() + 1_000));
    // The client's own defaults for the others (client_encoding, DateStyle …) are not sent, as before.
    return connectOptions(config.pgUrl()).setProperties(properties);
  }

  /**
   * The name the pools' sessions show in {@code pg_stat_activity}: pg_url's {@code application_name},
   * else its {@code fallback_application_name} as libpq reads the pair (the server has no setting of
   * that name and refuses a connection that sends it), else {@code idemgate}.
   */
  static String applicationName(String pgUrl) {
    return UrlQuery.parameter(pgUrl, "application_name")
        .or(() -> UrlQuery.parameter(pgUrl, "fallback_application_name"))
        .filter(name -> !name.isBlank())
        .orElse("idemgate");
  }

  /**
   * The pools' driver and transport, without pool options, connect options or connect handler: every
   * attempt to open a connection, TCP connect, TLS and start-up exchange together, is given up after
   * {@link #connectDeadlineMs} ({@link ConnectDeadlinePgDriver}).
   */
  static ClientBuilder<Pool> poolBuilder(GatewayConfig config) {
    return ClientBuilder.pool(new ConnectDeadlinePgDriver(connectDeadlineMs(config))).with(transportOptions(config));
  }

  /**
   * How long a pool connection may go without a byte from the server before it is closed: four
   * times {@code store_timeout} + 1 s, the statement_timeout of every statement (24 s at the
   * defaults). See {@link #closeWhenSilent}.
   *
   * <p>Invariant: no statement PostgreSQL is still working on is cut. The server ends every
   * statement within statement_timeout, and a connection is written on only after at most half this
   * time plus a cleaner period idle in the pool ({@link #build}), so a statement has over 7/16 of it,
   * 1.75 x statement_timeout, to be answered. The cost: under light traffic a connection idle for half
   * this time is closed, and the next statement opens a new one (a connect, a login, its statements
   * prepared again: milliseconds); never under load.
   */
  static Duration readIdle(GatewayConfig config) {
    return config.storeTimeout().plusSeconds(1).multipliedBy(4);
  }

  /** Set once it has been logged that connections get no read-idle close (said once, not per connection). */
  private static final AtomicBoolean SILENCE_UNWATCHED = new AtomicBoolean();

  /**
   * Gives a new pool connection a read-idle close ({@link #readIdle}), then hands it to the pool. A
   * statement sent on a connection that has stopped answering without being closed (a host gone
   * without a reset, a proxy or load balancer whose server is gone, a network that drops packets) is
   * never answered, and the pool gets that connection back only when it closes: without this, once
   * every connection of the request pool had carried such a statement, every payment was answered
   * 503 for as long as TCP kept them (about 15 minutes for a host gone; for ever behind a live
   * proxy), though PostgreSQL answered new connections (HungPostgresConnectionIT). The close fails
   * the statement on it, which its caller treats as "may or may not have been written" (a claim's
   * 503 and late release, a completion's 202), as when its own deadline passes.
   *
   * <p>Hazard: done on the connection's Netty pipeline through the client's internals, because
   * Vert.x 5.0.7's PostgreSQL driver dropped the transport options given to the pool (read-idle
   * timeout included; eclipse-vertx/vertx-sql-client#1608, fixed after 5.0.7). The pools' own driver
   * ({@link ConnectDeadlinePgDriver}) now hands them to the TCP client, so {@code
   * NetClientOptions#setReadIdleTimeout} in {@link #transportOptions} could do the same; this is
   * kept, tested as it is (HungPostgresConnectionIT). A connection whose start-up exchange is never
   * answered, which this cannot reach, is closed by that driver's deadline.
   */
  private static void closeWhenSilent(SqlConnection connection, long readIdleMs) {
    try {
      Connection socketConnection = innermost(((SqlConnectionInternal) connection).unwrap());
      if (socketConnection instanceof SocketConnectionBase base) {
        base.socket().channelHandlerContext().pipeline()
            .addFirst("idemgate-read-idle", new IdleStateHandler(readIdleMs, 0, 0, TimeUnit.MILLISECONDS));
      } else if (SILENCE_UNWATCHED.compareAndSet(false, true)) {
        log.warn("PostgreSQL connections get no read-idle close ({}): a connection that stops answering holds its "
            + "pool place until TCP gives up on it", socketConnection.getClass().getName());
      }
    } finally {
      connection.close(); // into the pool
    }
  }

  /**
   * Takes a connection lent by a pool of this class ({@code withConnection}, {@code getConnection})
   * out of its pool and closes it, for a session found to take no writes without a write being
   * refused (a refused one is left by itself, see {@link ReadOnlySessions}). The caller still
   * closes {@code connection} as usual; nothing goes back to the pool.
   *
   * @return false, and nothing done, for a connection not from such a pool
   */
  public static boolean leave(SqlConnection connection) {
    return ReadOnlySessions.leave(connection);
  }

  /**
   * One statement through {@code client}. Through a pool it is a transaction of its own, as {@code
   * pool.preparedQuery(sql).execute(params)}; but if PostgreSQL refuses it because its session takes
   * no writes (SQLSTATE 25006: a session opened during a write freeze, or on a demoted primary),
   * which wrote nothing, it is sent again on a new session, and fails only if that one refuses it
   * too. Without this, after a freeze was lifted, every pool connection opened during it failed one
   * payment (503) before it was closed. {@code timeoutMs} is the caller's deadline, which covers
   * both attempts: past it nothing is sent again. On a connection the caller holds, perhaps inside a
   * transaction, the statement is sent once, as it is.
   */
  public static Future<RowSet<Row>> execute(SqlClient client, String sql, Tuple params, long timeoutMs) {
    return client instanceof Pool pool ? ReadOnlySessions.execute(pool, sql, params, timeoutMs)
        : client.preparedQuery(sql).execute(params);
  }

  /**
   * The socket connection under a pool connection (the pool's own, then {@link ReadOnlySessions}'
   * watch, then the socket connection): each layer's {@code unwrap} goes one or more steps in.
   */
  static Connection innermost(Connection connection) {
    Connection c = connection;
    for (Connection inner = c.unwrap(); inner != c; inner = c.unwrap()) {
      c = inner;
    }
    return c;
  }

  /**
   * The shortest deadline of a pool's connection attempt, whatever {@code store_timeout}: a lost SYN
   * is sent again after 1 s (Linux), and a PostgreSQL in another zone or region is a round trip of
   * 1-100 ms away, so 2 s is one lost SYN and a distant server, with TLS and a SCRAM login (three
   * or four more round trips, and a few milliseconds of hashing) well inside it.
   */
  static final int MIN_CONNECT_TIMEOUT_MS = 2_000;

  /**
   * How long a pool's attempt to open a connection may take, TCP connect, TLS and start-up exchange
   * together: {@code store_timeout}, at least {@link #MIN_CONNECT_TIMEOUT_MS} (5 s at the defaults).
   * An attempt holds a place in the pool, so it needs a deadline: without one, a PostgreSQL host that
   * dropped packets held each place for Netty's 60 s, and one that accepted and never answered (a
   * stopped process behind a live port, a proxy with no server) for ever. But the deadline is not the
   * request's: the request stops waiting after {@code store_timeout} anyway (the pool's connection
   * timeout, and the store's own), while the attempt goes on and the connection, once open, joins the
   * pool and serves the requests after it. Tied to {@code store_timeout} alone, a 10 ms setting
   * (allowed) left a pool to a server 10 ms or more away, or one that lost a SYN, unable ever to open
   * a connection: every payment answered 503. The start-up exchange shares the TCP connect's
   * deadline rather than having one of its own: a PostgreSQL that takes seconds to start a backend is
   * already failing the requests, and one value is one thing to explain.
   */
  static int connectDeadlineMs(GatewayConfig config) {
    return (int) Math.max(MIN_CONNECT_TIMEOUT_MS, config.storeTimeout().toMillis());
  }

  /**
   * The pools' transport: a TCP connect gives up after {@link #connectDeadlineMs}. Vert.x 5.0.7's
   * own PostgreSQL driver drops these options (eclipse-vertx/vertx-sql-client#1608, fixed after
   * 5.0.7); {@link ConnectDeadlinePgDriver} hands them to the TCP client itself. The pool connections'
   * read-idle close is not set here but by {@link #closeWhenSilent}.
   */
  static NetClientOptions transportOptions(GatewayConfig config) {
    return new NetClientOptions().setConnectTimeout(connectDeadlineMs(config));
  }

  /** libpq's parameter naming the PEM file of the CA that signed the server's certificate. */
  static final String ROOT_CERT = "sslrootcert";

  /**
   * TLS as libpq reads {@code sslmode}: {@code require} (and {@code prefer}, {@code allow}) encrypts
   * without checking the server's certificate unless {@code sslrootcert} names a CA; {@code
   * verify-ca} checks it against that CA, {@code verify-full} the host name too. Without this the
   * client was given no TLS options at all, and every connection of a URL with any sslmode failed.
   */
  private static ClientSSLOptions sslOptions(SslMode mode, Optional<String> rootCert) {
    ClientSSLOptions ssl = new ClientSSLOptions();
    if (rootCert.isPresent()) {
      ssl.setTrustOptions(new PemTrustOptions().addCertPath(rootCert.get()));
    } else if (mode == SslMode.VERIFY_CA || mode == SslMode.VERIFY_FULL) {
      throw new IllegalArgumentException("pg_url: sslmode=" + mode.value
          + " needs sslrootcert=<path to the PEM of the CA that signed the server's certificate>");
    } else {
      ssl.setTrustAll(true);
    }
    if (mode == SslMode.VERIFY_FULL) {
      ssl.setHostnameVerificationAlgorithm("HTTPS");
    }
    return ssl;
  }

  /**
   * The same database as a JDBC URL, for Flyway at start-up and reconciliation, with the same TLS as
   * the pools. pgJDBC's {@code require} never checks the certificate, even with {@code sslrootcert}
   * (libpq's then checks it against that CA, as the pools do), so that pair is sent as {@code
   * verify-ca}; and without TLS for the pools (no {@code sslmode}, or {@code disable}) it says {@code
   * disable}, since pgJDBC's default is {@code prefer}.
   */
  public static String jdbcUrl(String url) {
    String normalized = url.replaceFirst("^postgres://", "postgresql://");
    PgConnectOptions o = connectOptions(normalized);
    StringBuilder jdbc = new StringBuilder("jdbc:postgresql://").append(o.getHost()).append(':').append(o.getPort())
        .append('/').append(o.getDatabase());
    SslMode mode = o.getSslMode();
    Optional<String> rootCert = UrlQuery.parameter(normalized, ROOT_CERT);
    if (mode == SslMode.DISABLE) {
      jdbc.append("?sslmode=disable");
    } else if (mode != null) {
      jdbc.append("?sslmode=").append(mode == SslMode.REQUIRE && rootCert.isPresent() ? SslMode.VERIFY_CA.value : mode.value);
      rootCert.ifPresent(cert ->
          jdbc.append('&').append(ROOT_CERT).append('=').append(URLEncoder.encode(cert, StandardCharsets.UTF_8)));
    }
    return jdbc.toString();
  }

  /**
   * How long opening a JDBC connection may take, TCP connect and login together: a PostgreSQL that
   * accepts the connection and never answers (a stopped process behind a live port, a proxy with
   * no server) otherwise blocks start-up, {@code migrate} and reconciliation for as long as the
   * socket timeout, which for migrations and reconciliation must be long.
   */
  public static final int JDBC_LOGIN_TIMEOUT_SECONDS = 10;

  /**
   * A JDBC connection to the same database, for blocking work off the event loops (start-up checks,
   * reconciliation). Every remote call needs a deadline: opening the connection may take
   * {@code loginTimeoutSeconds}, then {@code socketTimeoutSeconds} bounds each read (so a statement
   * that sends nothing back for longer), and keepalive lets the kernel notice a dead peer first.
   */
  public static java.sql.Connection jdbcConnection(String pgUrl, String applicationName, int loginTimeoutSeconds,
      int socketTimeoutSeconds) throws SQLException {
    return jdbcDataSource(pgUrl, applicationName, loginTimeoutSeconds, socketTimeoutSeconds).getConnection();
  }

  /** The connections of {@link #jdbcConnection} as a DataSource, for Flyway. */
  public static DataSource jdbcDataSource(String pgUrl, String applicationName, int loginTimeoutSeconds,
      int socketTimeoutSeconds) {
    PgConnectOptions o = connectOptions(pgUrl);
    PGSimpleDataSource source = new ReadDeadlineAfterLogin(socketTimeoutSeconds * 1_000);
    source.setURL(jdbcUrl(pgUrl));
    if (o.getUser() != null) {
      source.setUser(o.getUser());
    }
    if (o.getPassword() != null) {
      source.setPassword(o.getPassword());
    }
    source.setApplicationName(applicationName);
    // connectTimeout bounds the TCP connect alone, loginTimeout that and the start-up exchange
    // (TLS, authentication); neither limits a statement once connected.
    source.setConnectTimeout(loginTimeoutSeconds);
    source.setLoginTimeout(loginTimeoutSeconds);
    // pgJDBC meets its loginTimeout by giving up on the thread that connects, not by stopping it:
    // that thread reads the start-up exchange with the socket timeout, and against a server that
    // accepts and never answers it stayed blocked that long (15 minutes for reconciliation, in a
    // gateway that lives on) after the connection was refused. So the reads of the login have the
    // login's deadline, and the long one is set once logged in (ReadDeadlineAfterLogin).
    source.setSocketTimeout(loginTimeoutSeconds);
    source.setTcpKeepAlive(true);
    return source;
  }

  /** Connections whose reads have {@code readTimeoutMillis} once logged in (the login's reads have the socket timeout). */
  private static final class ReadDeadlineAfterLogin extends PGSimpleDataSource {
    private static final long serialVersionUID = 1L;
    private final int readTimeoutMillis;

    ReadDeadlineAfterLogin(int readTimeoutMillis) {
      this.readTimeoutMillis = readTimeoutMillis;
    }

    @Override
    public java.sql.Connection getConnection(String user, String password) throws SQLException {
      java.sql.Connection connection = super.getConnection(user, password);
      try {
        // pgJDBC sets the socket's SO_TIMEOUT here and never uses the executor (given for the JDBC contract).
        connection.setNetworkTimeout(Runnable::run, readTimeoutMillis);
        return connection;
      } catch (SQLException | RuntimeException e) {
        connection.close();
        throw e;
      }
    }
  }
}
