package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.idemgate.support.SilentListener;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import java.io.IOException;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The JDBC connections (migrations, the start-up check, reconciliation) against a PostgreSQL that
 * accepts and never answers: refused after the login timeout, and nothing of the attempt left behind
 * in a process that lives on (the management port runs reconciliations on its worker threads).
 */
class JdbcLoginIT {
  /** pgJDBC's name for the thread that opens a connection when a login timeout is set (org.postgresql.Driver). */
  private static final String CONNECT_THREAD = "PostgreSQL JDBC driver connection thread";
  private static final int LOGIN_TIMEOUT_SECONDS = 2;
  /** Reconciliation's read deadline, as in dev.idemgate.reconciliation.Jdbc. */
  private static final int SOCKET_TIMEOUT_SECONDS = 900;

  private static long connectThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.isAlive() && t.getName().equals(CONNECT_THREAD)).count();
  }

  @Test
  @DisplayName("a silent PostgreSQL: the connection is refused after the login timeout, and pgJDBC's connector "
      + "thread ends with it instead of waiting out the 15-minute read deadline")
  void silentPostgresLeavesNoConnectorThread() throws IOException {
    long before = connectThreads();
    try (SilentListener silent = new SilentListener()) {
      String url = "postgresql://postgres@127.0.0.1:" + silent.port() + "/postgres";
      long started = System.nanoTime();
      assertThatThrownBy(() -> Postgres.jdbcConnection(url, "idemgate-test", LOGIN_TIMEOUT_SECONDS, SOCKET_TIMEOUT_SECONDS))
          .isInstanceOf(SQLException.class);
      long tookMs = (System.nanoTime() - started) / 1_000_000;
      assertThat(tookMs).isBetween(LOGIN_TIMEOUT_SECONDS * 1_000L - 100, LOGIN_TIMEOUT_SECONDS * 1_000L + 3_000);
      assertThat(silent.acceptedCount()).as("the attempt reached the silent listener").isPositive();

      // The listener still holds the connection open and silent: only a deadline of the thread's own ends it.
      Waits.eventually(Duration.ofSeconds(LOGIN_TIMEOUT_SECONDS + 3), () -> connectThreads() == before,
          "no pgJDBC connector thread left reading from the silent PostgreSQL");
    }
  }

  @Test
  @DisplayName("once logged in, a JDBC connection waits on a read for its long deadline, not the login's")
  void loggedInConnectionKeepsItsReadDeadline() throws SQLException {
    try (Connection c = Postgres.jdbcConnection(TestGateway.pgUrl(), "idemgate-test", LOGIN_TIMEOUT_SECONDS,
        SOCKET_TIMEOUT_SECONDS)) {
      assertThat(c.getNetworkTimeout()).isEqualTo(SOCKET_TIMEOUT_SECONDS * 1_000);
      // A statement quiet for longer than the login timeout is waited for.
      c.createStatement().execute("SELECT pg_sleep(" + (LOGIN_TIMEOUT_SECONDS + 1) + ")");
    }
  }
}
