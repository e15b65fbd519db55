package dev.idemgate.support;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.json.JsonObject;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("process helpers for fault tests")
class ProcessHelpersIT {

  @Test
  @DisplayName("the acquirer process with dedup off charges every request, and lists all charges with their keys")
  void acquirerProcess() {
    try (AcquirerProcess acquirer = AcquirerProcess.start(); Http http = new Http()) {
      String key = "pk-" + UUID.randomUUID();
      JsonObject body = new JsonObject().put("amount", 500).put("currency", "EUR").put("source", "tok_visa").put("reference", "p1");
      for (int i = 0; i < 2; i++) {
        Http.Reply reply = http.send(io.vertx.core.http.HttpMethod.POST, acquirer.port(), "/charges",
            Map.of("Idempotency-Key", key, "Content-Type", "application/json"), body.toBuffer());
        assertThat(reply.status()).isEqualTo(200);
        assertThat(reply.json().getString("status")).isEqualTo("succeeded");
      }
      JsonObject log = acquirer.charges(key);
      assertThat(log.getInteger("requests")).isEqualTo(2);
      assertThat(log.getJsonArray("charges")).hasSize(2);
      JsonObject all = acquirer.allCharges();
      assertThat(all.getJsonArray("charges").stream().map(c -> ((JsonObject) c).getString("idempotency_key")))
          .containsExactly(key, key);

      acquirer.process().kill();
      assertThat(acquirer.process().isAlive()).isFalse();
      assertThat(ChildProcess.status(acquirer.url() + "/health")).isEqualTo(-1);
    }
  }

  @Test
  @DisplayName("the throwaway Redis can be killed, restarted empty, paused and resumed")
  void throwawayRedis() {
    try (ThrowawayRedis redis = ThrowawayRedis.start()) {
      assertThat(redis.ping()).isEqualTo("+PONG");
      assertThat(redis.dbSize()).isZero();
      redis.pause();
      assertThat(redis.ping()).isNull();
      redis.resume();
      assertThat(redis.ping()).isEqualTo("+PONG");
      redis.kill();
      assertThat(redis.ping()).isNull();
      redis.restartEmpty();
      assertThat(redis.ping()).isEqualTo("+PONG");
    }
  }

  @Test
  @DisplayName("the throwaway PostgreSQL keeps committed rows across a crash and an immediate restart")
  void throwawayPostgres() throws SQLException {
    try (ThrowawayPostgres pg = ThrowawayPostgres.start()) {
      String jdbc = "jdbc:postgresql://127.0.0.1:" + pg.port() + "/postgres?user=postgres&connectTimeout=2";
      try (Connection c = DriverManager.getConnection(jdbc); Statement s = c.createStatement()) {
        s.execute("CREATE TABLE survives (id int)");
        s.execute("INSERT INTO survives VALUES (42)");
      }
      pg.crash();
      assertThatThrownBy(() -> DriverManager.getConnection(jdbc).close()).isInstanceOf(SQLException.class);
      pg.restart();
      try (Connection c = DriverManager.getConnection(jdbc); Statement s = c.createStatement();
          ResultSet rs = s.executeQuery("SELECT id FROM survives")) {
        assertThat(rs.next()).isTrue();
        assertThat(rs.getInt(1)).isEqualTo(42);
      }
    }
  }

  @Test
  @DisplayName("a gateway process becomes ready, can be paused, resumed, killed with SIGKILL and restarted")
  void gatewayProcess() {
    try (GatewayProcess gateway = GatewayProcess.start(Map.of())) {
      gateway.awaitReady();
      String ready = "http://127.0.0.1:" + gateway.managementPort() + "/health/ready";
      gateway.pause();
      assertThat(ChildProcess.status(ready)).isEqualTo(-1);
      gateway.resume();
      assertThat(ChildProcess.status(ready)).isEqualTo(200);
      long firstPid = gateway.pid();
      gateway.kill();
      assertThat(gateway.isAlive()).isFalse();
      gateway.restart().awaitReady();
      assertThat(gateway.pid()).isNotEqualTo(firstPid);
    }
  }
}
