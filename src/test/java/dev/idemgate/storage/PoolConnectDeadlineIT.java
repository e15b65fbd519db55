package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.support.Http;
import dev.idemgate.support.ProxiedPostgres;
import dev.idemgate.support.SilentListener;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.impl.SocketConnectionBase;
import io.vertx.sqlclient.internal.SqlConnectionInternal;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * Every attempt of a pool to open a PostgreSQL connection has a deadline, TCP connect, TLS and
 * start-up exchange together: an attempt holds a place in the pool, and Vert.x 5.0.7's driver gave
 * it none (it drops the pool's transport options, vertx-sql-client#1608). A PostgreSQL that accepted
 * and never answered (a stopped process behind a live port, a proxy with no server) kept each
 * place for ever; a host that dropped packets kept it for Netty's 60 s.
 */
class PoolConnectDeadlineIT {
  /** The deadline at store_timeout 200 ms: the 2 s floor. */
  private static final long DEADLINE_MS = Postgres.MIN_CONNECT_TIMEOUT_MS;
  /** What the deadline may overrun by on a loaded machine (timers, thread scheduling). */
  private static final long SLACK_MS = 2_000;
  private static final String PASSWORD = "never-in-a-message";

  private static Vertx vertx;

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void stop() {
    Http.await(vertx.close());
  }

  private static GatewayConfig config(String pgUrl) {
    return TestGateway.config(Map.of("IDEMGATE_PG_URL", pgUrl, "IDEMGATE_STORE_TIMEOUT", "200ms"));
  }

  private static String urlWithPassword(int port) {
    return "postgresql://postgres:" + PASSWORD + "@127.0.0.1:" + port + "/postgres";
  }

  /** A pool with the gateway's driver and transport whose requests wait 20 s for a connection: longer than any deadline here. */
  private static Pool patientPool(GatewayConfig config) {
    return Postgres.poolBuilder(config)
        .with(new PoolOptions().setMaxSize(1).setConnectionTimeout(20).setConnectionTimeoutUnit(TimeUnit.SECONDS))
        .connectingTo(Postgres.connectOptions(config.pgUrl())).using(vertx).build();
  }

  /**
   * A pool that is closed at the end of a try block, and must close within the deadline and slack: a
   * close waits for the connection attempts under way. Its failure, if any, is added to the body's.
   */
  private record Closing(Pool pool) implements AutoCloseable {
    @Override
    public void close() throws Exception {
      try {
        pool.close().toCompletionStage().toCompletableFuture().get(DEADLINE_MS + SLACK_MS, TimeUnit.MILLISECONDS);
      } catch (java.util.concurrent.TimeoutException e) {
        throw new AssertionError("the pool did not close within " + (DEADLINE_MS + SLACK_MS) + " ms", e);
      }
    }
  }

  /** How a request for a connection ended, and after how long. */
  private record Outcome(Throwable failure, long millis) {}

  private static Outcome connectionRequest(Pool pool) {
    long start = System.nanoTime();
    Future<SqlConnection> connection = pool.getConnection();
    Http.await(connection.otherwiseEmpty());
    long millis = (System.nanoTime() - start) / 1_000_000;
    if (connection.succeeded()) {
      Http.await(connection.result().close());
    }
    return new Outcome(connection.cause(), millis);
  }

  @Test
  @DisplayName("a pool connection whose start-up exchange is never answered is closed by the client after the deadline "
      + "(2 s at store_timeout 200 ms), and the places it held open new connections")
  void unansweredStartupIsGivenUp() throws Exception {
    try (SilentListener silent = new SilentListener();
        Closing pool = new Closing(Postgres.pool(vertx, config(urlWithPassword(silent.port())), 2, "connect-deadline-test"))) {
      long start = System.nanoTime();
      // Both places taken by attempts; the requests themselves give up after store_timeout.
      List<Future<?>> queries = List.of(pool.pool().query("SELECT 1").execute(), pool.pool().query("SELECT 1").execute());
      for (Future<?> query : queries) {
        Http.await(query.otherwiseEmpty());
        assertThat(query.failed()).as("a query with no answer").isTrue();
      }
      Waits.eventually(Duration.ofSeconds(5), () -> silent.acceptedCount() == 2, "both places connecting");

      Waits.eventually(Duration.ofMillis(DEADLINE_MS + SLACK_MS), () -> silent.closedByClientCount() == 2,
          "the client closes both connections whose start-up was never answered");
      long closedAfterMs = (System.nanoTime() - start) / 1_000_000;
      System.out.printf("unanswered start-up exchanges closed by the client after %d ms%n", closedAfterMs);
      assertThat(closedAfterMs).as("not before the deadline").isGreaterThanOrEqualTo(DEADLINE_MS - 100);

      // The places are free: new requests open new connections (held, again, for a deadline at most).
      Http.await(pool.pool().query("SELECT 1").execute().otherwiseEmpty());
      Waits.eventually(Duration.ofSeconds(5), () -> silent.acceptedCount() == 3, "a new connection in a freed place");
      assertThat(silent.acceptedCount() - silent.closedByClientCount()).as("connections open at once")
          .isLessThanOrEqualTo(2);
    }
  }

  @Test
  @DisplayName("a request waiting for a connection whose start-up is never answered fails at the deadline, naming it "
      + "and host:port, never the password")
  void unansweredStartupFailsTheWaitingRequest() throws Exception {
    try (SilentListener silent = new SilentListener();
        Closing pool = new Closing(patientPool(config(urlWithPassword(silent.port()))))) {
      Outcome outcome = connectionRequest(pool.pool());
      assertThat(outcome.failure()).as("the request for a connection fails").isNotNull();
      assertThat(outcome.millis()).as("at the deadline").isBetween(DEADLINE_MS - 100, DEADLINE_MS + SLACK_MS);
      assertThat(outcome.failure().getMessage())
          .contains("127.0.0.1:" + silent.port(), DEADLINE_MS + " ms")
          .doesNotContain(PASSWORD);
      Waits.eventually(Duration.ofMillis(SLACK_MS), () -> silent.closedByClientCount() == 1, "the connection closed");
    }
  }

  @Test
  @DisplayName("a TCP connect that is never answered (the SYN dropped) fails at the deadline, not after Netty's 60 s")
  void unansweredTcpConnectFailsAtTheDeadline() throws Exception {
    // A listener that never accepts, with a backlog of 1: once its accept queue is full (two
    // connections on Linux), the kernel drops further SYNs, as a host that drops packets does.
    List<Socket> fillers = new ArrayList<>();
    try (ServerSocket full = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      assertThat(fillAcceptQueue(full.getLocalPort(), fillers)).as("a connect that hangs could be made").isTrue();
      try (Closing pool = new Closing(patientPool(config(urlWithPassword(full.getLocalPort()))))) {
        Outcome outcome = connectionRequest(pool.pool());
        assertThat(outcome.failure()).as("the request for a connection fails").isNotNull();
        assertThat(outcome.millis()).as("at the deadline").isBetween(DEADLINE_MS - 100, DEADLINE_MS + SLACK_MS);
        assertThat(outcome.failure().getMessage()).contains("127.0.0.1:" + full.getLocalPort()).doesNotContain(PASSWORD);
      }
    } finally {
      for (Socket filler : fillers) {
        filler.close();
      }
    }
  }

  /** Connects to {@code port} until a connect times out: the accept queue is full. */
  private static boolean fillAcceptQueue(int port, List<Socket> fillers) throws IOException {
    for (int i = 0; i < 16; i++) {
      Socket socket = new Socket();
      try {
        socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 300);
        fillers.add(socket);
      } catch (SocketTimeoutException full) {
        socket.close();
        return true;
      }
    }
    return false;
  }

  @Test
  @DisplayName("a PostgreSQL that answers the start-up only after the deadline gets the connection closed, not pooled; "
      + "once it answers in time the pool connects again")
  void lateStartupIsClosedNotPooled() throws Exception {
    try (ProxiedPostgres postgres = ProxiedPostgres.start(); Closing pool = new Closing(patientPool(config(postgres.url())))) {
      // Each way 1.5 s: the start-up exchange takes over 3 s.
      postgres.proxy().latency(1_500);
      Outcome late = connectionRequest(pool.pool());
      assertThat(late.failure()).as("the late connection is not handed over").isNotNull();
      assertThat(late.millis()).as("at the deadline").isBetween(DEADLINE_MS - 100, DEADLINE_MS + SLACK_MS);
      Waits.eventually(Duration.ofMillis(1_500 + SLACK_MS), () -> postgres.proxy().openConnections() == 0,
          "the client closes the late connection");

      postgres.proxy().latency(0);
      Outcome inTime = connectionRequest(pool.pool());
      assertThat(inTime.failure()).as("a connection in time").isNull();
      assertThat(Http.await(pool.pool().query("SELECT 1 AS one").execute()).iterator().next().getInteger("one"))
          .isEqualTo(1);
      assertThat(postgres.proxy().acceptedConnections()).as("the late connection was not reused").isEqualTo(2);
    }
  }

  @Test
  @DisplayName("sslmode=prefer against a PostgreSQL without TLS falls back to a plain connection within the same "
      + "attempt, and the refused TLS connection is closed")
  void preferFallsBackWithinTheAttempt() throws Exception {
    try (ProxiedPostgres postgres = ProxiedPostgres.start()) {
      assertThat(postgres.url()).as("the test server's URL has no query of its own").doesNotContain("?");
      String url = postgres.url() + "?sslmode=prefer";
      try (Closing pool = new Closing(Postgres.poolBuilder(config(url)).with(new PoolOptions().setMaxSize(1))
          .connectingTo(Postgres.connectOptions(url)).using(vertx).build())) {
        assertThat(Http.await(pool.pool().query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").execute())
            .iterator().next().getBoolean("ssl")).as("the PostgreSQL of the tests runs without TLS").isFalse();
        assertThat(postgres.proxy().acceptedConnections()).as("a TLS connection refused, then a plain one").isEqualTo(2);
        Waits.eventually(Duration.ofMillis(SLACK_MS), () -> postgres.proxy().openConnections() == 1,
            "the refused connection closed, the pool's left open");
      }
    }
  }

  @Test
  @DisplayName("the gateway's pools still connect, and their connections still get the read-idle close")
  void poolsStillConnectWithReadIdleClose() {
    Pool pool = Postgres.pool(vertx, TestGateway.config(Map.of()), 1, "connect-deadline-normal-test");
    try {
      SqlConnection connection = Http.await(pool.getConnection());
      try {
        SocketConnectionBase socket = (SocketConnectionBase) Postgres.innermost(((SqlConnectionInternal) connection).unwrap());
        assertThat(socket.socket().channelHandlerContext().pipeline().get("idemgate-read-idle")).isNotNull();
        assertThat(Http.await(connection.query("SELECT 1 AS one").execute()).iterator().next().getInteger("one"))
            .isEqualTo(1);
      } finally {
        Http.await(connection.close());
      }
    } finally {
      Http.await(pool.close());
    }
  }
}
