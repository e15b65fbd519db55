package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.support.Http;
import dev.idemgate.support.ProxiedPostgres;
import dev.idemgate.support.ScratchDatabase;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.pgclient.PgException;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A pool connection whose session takes no writes is closed, not lent again, on every path a
 * statement takes to it (ReadOnlySessions): a query of the pool, withConnection, withTransaction, on
 * the request pool and the others. Each pool here has one connection, opened while writes are frozen;
 * the freeze is lifted, and the next write on that session is refused as read-only (SQLSTATE 25006).
 * Before, the pool kept the session, and every write on it was refused for as long as it lived.
 * A statement sent through {@link Postgres#execute} (the stores' own) is also sent again on a new
 * session, once: before, it failed (a payment's 503) on each such session.
 */
class ReadOnlySessionsIT {
  private static final String WRITE = "INSERT INTO written (x) VALUES (1)";

  private static Vertx vertx;
  private static ScratchDatabase db;
  private static TestDb admin;
  /** On the test's database, where {@code written} and {@code tries} are. */
  private static TestDb scratch;
  private static GatewayConfig config;

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
    db = ScratchDatabase.create(vertx, "rosessions");
    admin = new TestDb(vertx);
    // Its connection is opened here, before any freeze: it takes writes throughout.
    scratch = new TestDb(vertx, db.url());
    scratch.query("CREATE TABLE written (x int)");
    scratch.query("CREATE SEQUENCE tries");
    config = TestGateway.config(Map.of("IDEMGATE_PG_URL", db.url()));
  }

  @AfterAll
  static void stop() {
    scratch.close();
    admin.close();
    db.close();
    Http.await(vertx.close());
  }

  @Test
  @DisplayName("a query of the request pool refused as read-only: the next statement runs on a new session, which writes")
  void requestPoolQuery() {
    refusedThenNewSession(Postgres.requestPool(vertx, config, 1, "read-only-request-test"),
        pool -> pool.preparedQuery(WRITE).execute().mapEmpty());
  }

  @Test
  @DisplayName("a query of a pool for occasional work refused as read-only: the next statement runs on a new session")
  void poolQuery() {
    refusedThenNewSession(Postgres.pool(vertx, config, 1, "read-only-query-test"),
        pool -> pool.query(WRITE).execute().mapEmpty());
  }

  @Test
  @DisplayName("a statement in withConnection refused as read-only: the next statement runs on a new session")
  void withConnection() {
    refusedThenNewSession(Postgres.pool(vertx, config, 1, "read-only-connection-test"),
        pool -> pool.withConnection(connection -> connection.preparedQuery(WRITE).execute()).mapEmpty());
  }

  @Test
  @DisplayName("a statement in withTransaction refused as read-only (recovery's path): the next statement runs on a new session")
  void withTransaction() {
    refusedThenNewSession(Postgres.pool(vertx, config, 1, "read-only-transaction-test"),
        pool -> pool.withTransaction(connection -> connection.preparedQuery("SELECT 1").execute()
            .compose(read -> connection.preparedQuery(WRITE).execute())).mapEmpty());
  }

  @Test
  @DisplayName("a statement of the pool (Postgres.execute) refused as read-only is sent again on a new session, past "
      + "every other session opened during the freeze: it writes, once")
  void refusedStatementSentAgainOnANewSession() {
    Pool pool = Postgres.requestPool(vertx, config, 3, "read-only-again-test");
    try {
      Set<Integer> frozen = new HashSet<>();
      admin.query("ALTER DATABASE " + db.name() + " SET default_transaction_read_only = on");
      try {
        // Two sessions at once, both given back to the pool: both read-only, both idle in it.
        List<SqlConnection> held = List.of(Http.await(pool.getConnection()), Http.await(pool.getConnection()));
        for (SqlConnection connection : held) {
          frozen.add(Http.await(connection.query("SELECT pg_backend_pid() AS pid").execute()).iterator().next()
              .getInteger("pid"));
          Http.await(connection.close());
        }
      } finally {
        admin.query("ALTER DATABASE " + db.name() + " RESET default_transaction_read_only");
      }
      assertThat(frozen).hasSize(2);

      RowSet<Row> written = Http.await(Postgres.execute(pool,
          "INSERT INTO written (x) VALUES (2) RETURNING pg_backend_pid() AS pid", Tuple.tuple(), 10_000));
      assertThat(written.iterator().next().getInteger("pid")).as("the session that wrote (frozen: %s)", frozen)
          .isNotIn(frozen);
      assertThat(scratch.scalar("SELECT count(*) FROM written WHERE x = 2")).isEqualTo(1L);
      for (int pid : frozen) {
        Waits.eventually(Duration.ofSeconds(10), () -> !alive(pid), "the read-only session " + pid + " is closed");
      }
    } finally {
      Http.await(pool.close());
    }
  }

  @Test
  @DisplayName("while writes stay frozen, a statement refused as read-only is sent again on one new session, refused "
      + "there too, and fails as read-only: no third session")
  void stillFrozenFailsAfterOneNewSession() {
    try (ProxiedPostgres proxied = ProxiedPostgres.start(db.url())) {
      Pool pool = Postgres.requestPool(vertx, TestGateway.config(Map.of("IDEMGATE_PG_URL", proxied.url())), 3,
          "read-only-frozen-test");
      admin.query("ALTER DATABASE " + db.name() + " SET default_transaction_read_only = on");
      try {
        pid(pool);
        assertThat(proxied.proxy().acceptedConnections()).as("sessions opened before the write").isEqualTo(1);
        Throwable refused = failure(Postgres.execute(pool, WRITE, Tuple.tuple(), 10_000).mapEmpty());
        assertThat(refused).isInstanceOf(PgException.class);
        assertThat(((PgException) refused).getSqlState()).as(refused.getMessage()).isEqualTo("25006");
        Waits.sleep(500);
        assertThat(proxied.proxy().acceptedConnections()).as("sessions opened: the frozen one, then one new one")
            .isEqualTo(2);
      } finally {
        admin.query("ALTER DATABASE " + db.name() + " RESET default_transaction_read_only");
        Http.await(pool.close());
      }
    }
  }

  @Test
  @DisplayName("a statement refused as read-only after its caller's deadline is not sent again: its caller has answered")
  void refusedPastTheDeadlineIsNotSentAgain() {
    try (ProxiedPostgres proxied = ProxiedPostgres.start(db.url())) {
      Pool pool = poolWithASessionOfAFreezeLifted(proxied, "read-only-deadline-test");
      try {
        // A deadline of 0 ms has passed by the time the refusal comes back.
        Throwable refused = failure(Postgres.execute(pool, "INSERT INTO written (x) VALUES (3)", Tuple.tuple(), 0)
            .mapEmpty());
        assertThat(refused).as(String.valueOf(refused)).isInstanceOf(TimeoutException.class);
        Waits.sleep(500);
        assertThat(proxied.proxy().acceptedConnections()).as("sessions opened: the frozen one alone").isEqualTo(1);
        assertThat(scratch.scalar("SELECT count(*) FROM written WHERE x = 3")).isEqualTo(0L);
      } finally {
        Http.await(pool.close());
      }
    }
  }

  @Test
  @DisplayName("a statement refused as read-only whose new session is ready only after the caller's deadline is not sent "
      + "on it")
  void newSessionReadyPastTheDeadlineIsNotUsed() {
    try (ProxiedPostgres proxied = ProxiedPostgres.start(db.url())) {
      Pool pool = poolWithASessionOfAFreezeLifted(proxied, "read-only-late-session-test");
      try {
        // 500 ms each way: the refusal comes back after about 2 s (the statement's prepare and its
        // execution, a round trip each), within the 2.5 s deadline; a new session (its start-up and
        // answer, at least a round trip) is ready only after about 3 s.
        proxied.proxy().latency(500);
        Throwable refused = failure(Postgres.execute(pool, "INSERT INTO written (x) VALUES (4)", Tuple.tuple(), 2_500)
            .mapEmpty());
        assertThat(refused).as(String.valueOf(refused)).isInstanceOf(TimeoutException.class);
        assertThat(proxied.proxy().acceptedConnections()).as("sessions opened: the frozen one, then a new one")
            .isEqualTo(2);
        Waits.sleep(2_000);
        assertThat(scratch.scalar("SELECT count(*) FROM written WHERE x = 4")).as("rows the statement wrote")
            .isEqualTo(0L);
      } finally {
        proxied.proxy().latency(0);
        Http.await(pool.close());
      }
    }
  }

  /**
   * A pool through {@code proxied} holding one idle session opened while writes were frozen, the
   * freeze lifted since: that session still refuses writes, a new one takes them.
   */
  private Pool poolWithASessionOfAFreezeLifted(ProxiedPostgres proxied, String name) {
    Pool pool = Postgres.requestPool(vertx, TestGateway.config(Map.of("IDEMGATE_PG_URL", proxied.url())), 3, name);
    admin.query("ALTER DATABASE " + db.name() + " SET default_transaction_read_only = on");
    try {
      pid(pool);
    } finally {
      admin.query("ALTER DATABASE " + db.name() + " RESET default_transaction_read_only");
    }
    return pool;
  }

  @Test
  @DisplayName("a statement of the pool (Postgres.execute) that fails for another reason, or succeeds, is sent once")
  void otherOutcomesAreSentOnce() {
    Pool pool = Postgres.requestPool(vertx, config, 1, "read-only-once-test");
    try {
      // nextval is not undone by a rollback: the sequence counts the executions.
      long before = (Long) scratch.scalar("SELECT nextval('tries')");
      Throwable refused = failure(Postgres.execute(pool, "SELECT nextval('tries') / 0", Tuple.tuple(), 10_000).mapEmpty());
      assertThat(((PgException) refused).getSqlState()).as("division by zero").isEqualTo("22012");
      assertThat(scratch.scalar("SELECT last_value FROM tries")).as("executions of the failed statement")
          .isEqualTo(before + 1);
      Http.await(Postgres.execute(pool, "SELECT nextval('tries')", Tuple.tuple(), 10_000));
      assertThat(scratch.scalar("SELECT last_value FROM tries")).as("executions of the statement that succeeded")
          .isEqualTo(before + 2);
    } finally {
      Http.await(pool.close());
    }
  }

  @Test
  @DisplayName("a connection left by its holder (Postgres.leave, the readiness check's) is closed, and the pool opens another")
  void leftByItsHolder() {
    Pool pool = Postgres.pool(vertx, config, 1, "read-only-leave-test");
    try {
      int first = pid(pool);
      Http.await(pool.withConnection(connection -> {
        assertThat(Postgres.leave(connection)).isTrue();
        return Future.succeededFuture();
      }));
      assertThat(pid(pool)).as("the session after the one left").isNotEqualTo(first);
      Waits.eventually(Duration.ofSeconds(10), () -> !alive(first), "the session left is closed");
    } finally {
      Http.await(pool.close());
    }
  }

  @Test
  @DisplayName("a statement refused for any other reason (a bad value) keeps its connection")
  void otherRefusalsKeepTheConnection() {
    Pool pool = Postgres.requestPool(vertx, config, 1, "read-only-other-test");
    try {
      int first = pid(pool);
      Throwable refused = failure(pool.preparedQuery("SELECT 1 / (0 * pg_backend_pid())").execute().mapEmpty());
      assertThat(refused).isInstanceOf(PgException.class);
      assertThat(((PgException) refused).getSqlState()).as("division by zero").isEqualTo("22012");
      assertThat(pid(pool)).as("the same session").isEqualTo(first);
    } finally {
      Http.await(pool.close());
    }
  }

  /**
   * Opens the pool's one connection while writes are frozen, lifts the freeze, and writes through
   * {@code write}: refused (the session is still read-only), then the next statement is on another
   * session, the frozen one is closed, and the same write goes through.
   */
  private static void refusedThenNewSession(Pool pool, Function<Pool, Future<Void>> write) {
    try {
      int frozen;
      admin.query("ALTER DATABASE " + db.name() + " SET default_transaction_read_only = on");
      try {
        frozen = pid(pool);
      } finally {
        admin.query("ALTER DATABASE " + db.name() + " RESET default_transaction_read_only");
      }
      Throwable refused = failure(write.apply(pool));
      assertThat(refused).isInstanceOf(PgException.class);
      assertThat(((PgException) refused).getSqlState()).as(refused.getMessage()).isEqualTo("25006");

      assertThat(pid(pool)).as("the session of the statement after the refused write (the refused one's: %d)", frozen)
          .isNotEqualTo(frozen);
      Http.await(write.apply(pool));
      Waits.eventually(Duration.ofSeconds(10), () -> !alive(frozen), "the read-only session is closed");
    } finally {
      Http.await(pool.close());
    }
  }

  private static int pid(Pool pool) {
    return Http.await(pool.query("SELECT pg_backend_pid() AS pid").execute()).iterator().next().getInteger("pid");
  }

  private static boolean alive(int pid) {
    return (Long) admin.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) > 0;
  }

  private static Throwable failure(Future<Void> future) {
    return Http.await(future.map(v -> (Throwable) null).otherwise(failure -> failure));
  }
}
