package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** What PostgreSQL does with a reconciliation session whose process is gone without closing its connection. */
class ReconciliationConnectionIT {
  @Test
  @DisplayName("a reconciliation session left idle in a transaction holding the settlement history (its process gone, "
      + "the connection never closed) is ended by PostgreSQL, and the history is free again for other runs")
  void aSessionLeftIdleInATransactionGivesTheHistoryBack() throws Exception {
    try (Connection gone = Jdbc.connect(TestGateway.pgUrl()); Connection other = Jdbc.connect(TestGateway.pgUrl())) {
      gone.setAutoCommit(false);
      Reconciler.endTheSessionIfLeftIdle(gone, Duration.ofSeconds(1)); // as a run does, with 5 minutes
      LedgerFixture.holdTheSettlementHistory(gone);
      long pid = backendPid(gone);
      assertThat(holdsTheHistory(other, pid)).as("the session holds the history").isTrue();

      // The process sends nothing more, as one whose machine was lost would.
      Waits.eventually(Duration.ofSeconds(15), () -> !holdsTheHistory(other, pid), "the history given back");
      assertThatThrownBy(() -> backendPid(gone)).as("the session was ended").isInstanceOf(SQLException.class);
    }
  }

  @Test
  @DisplayName("reconciliation connections have PostgreSQL's own TCP keepalive (60 s idle, 10 s apart, 6 probes); the "
      + "idle-in-transaction limit is a run's or a deletion's alone, not the session's, so a report read through a cursor "
      + "into a pager that waits is not cut")
  void sessionsHavePostgresKeepalive() throws Exception {
    try (Connection c = Jdbc.connect(TestGateway.pgUrl()); Statement s = c.createStatement()) {
      assertThat(setting(s, "tcp_keepalives_idle")).isEqualTo("60");
      assertThat(setting(s, "tcp_keepalives_interval")).isEqualTo("10");
      assertThat(setting(s, "tcp_keepalives_count")).isEqualTo("6");
      assertThat(setting(s, "idle_in_transaction_session_timeout")).isEqualTo("0");
      c.setAutoCommit(false);
      Reconciler.endTheSessionIfLeftIdle(c, Reconciler.IDLE_IN_TRANSACTION);
      assertThat(setting(s, "idle_in_transaction_session_timeout")).isEqualTo("5min");
      c.commit();
      assertThat(setting(s, "idle_in_transaction_session_timeout")).as("after the transaction").isEqualTo("0");
    }
  }

  private static String setting(Statement s, String name) throws SQLException {
    try (ResultSet rs = s.executeQuery("SHOW " + name)) {
      rs.next();
      return rs.getString(1);
    }
  }

  private static long backendPid(Connection c) throws SQLException {
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT pg_backend_pid()")) {
      rs.next();
      return rs.getLong(1);
    }
  }

  /** Whether the session {@code pid} holds the settlement history's advisory lock. */
  private static boolean holdsTheHistory(Connection c, long pid) {
    try {
      return LedgerFixture.sessionsOnTheHistoryLock(c, true, pid) == 1;
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }
}
