package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import java.sql.SQLException;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The start-up check of PostgreSQL's settings, against the real server. */
class ServerLimitsIT {
  private static List<String> warnings(CapturedLogs logs) {
    return logs.events().stream().filter(e -> e.getLevel() == Level.WARN).map(ILoggingEvent::getFormattedMessage).toList();
  }

  @Test
  @DisplayName("pools larger than max_connections are warned of at start-up; the default ones are not, and the instances that fit are said")
  void connections() {
    try (CapturedLogs logs = CapturedLogs.of(ServerLimits.class)) {
      ServerLimits.check(TestGateway.config(Map.of("IDEMGATE_API_INSTANCES", "2", "IDEMGATE_PG_POOL_SIZE", "60")));
      assertThat(warnings(logs)).anySatisfy(w -> assertThat(w).contains("up to 128").contains("store_unavailable"));
    }
    try (CapturedLogs logs = CapturedLogs.of(ServerLimits.class)) {
      ServerLimits.check(TestGateway.config(Map.of("IDEMGATE_API_INSTANCES", "2", "IDEMGATE_PG_POOL_SIZE", "8")));
      assertThat(warnings(logs)).noneSatisfy(w -> assertThat(w).contains("connections"));
      assertThat(logs.events()).anySatisfy(e -> assertThat(e.getFormattedMessage())
          .contains("one instance opens up to 24 (2 API verticles x pg_pool_size 8 + 8)").contains("instances fit"));
    }
  }

  @Test
  @DisplayName("autovacuum is read from the server and from the keys table's own setting")
  void autovacuum() throws SQLException {
    String database = "idemgate_limits_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    try (Http http = new Http(); TestDb admin = new TestDb(http.vertx())) {
      boolean serverAutovacuum = "on".equals(admin.scalar("SELECT current_setting('autovacuum')"));
      admin.query("CREATE DATABASE " + database);
      try {
        String url = TestGateway.pgUrlOf(database);
        Migrations.migrate(url);
        assertThat(ServerLimits.read(url).autovacuum()).isEqualTo(serverAutovacuum);
        assertThat(ServerLimits.read(url).keysAutovacuum()).isTrue();
        try (TestDb db = new TestDb(http.vertx(), url)) {
          db.query("ALTER TABLE idemgate.idempotency_keys SET (fillfactor = 90, autovacuum_enabled = off)");
          assertThat(ServerLimits.read(url).keysAutovacuum()).isFalse();
          db.query("ALTER TABLE idemgate.idempotency_keys SET (autovacuum_enabled = on)");
          assertThat(ServerLimits.read(url).keysAutovacuum()).isTrue();
        }
        try (CapturedLogs logs = CapturedLogs.of(ServerLimits.class)) {
          ServerLimits.check(TestGateway.config(Map.of("IDEMGATE_PG_URL", url)));
          assertThat(warnings(logs).stream().anyMatch(w -> w.contains("autovacuum off"))).isEqualTo(!serverAutovacuum);
        }
      } finally {
        admin.query("DROP DATABASE " + database + " WITH (FORCE)");
      }
    }
  }
}
