package dev.idemgate.observability;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.ProxiedPostgres;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.ScratchDatabase;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedis;
import dev.idemgate.support.Waits;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * {@code idemgate_dependency_up}: what the readiness checks found. While PostgreSQL is away every
 * pod is out of the Service and its request counters stand still, so the alert on a fleet without
 * its database reads this gauge (k8s/alerts.yaml, IdemgatePostgresUnreachable).
 */
class DependencyUpIT {

  @Test
  @DisplayName("idemgate_dependency_up follows the readiness checks: PostgreSQL refused reads 0 and readiness DOWN, back reads 1; Redis frozen reads 0 and DEGRADED")
  void followsReadiness() {
    try (ProxiedPostgres pg = ProxiedPostgres.start();
         ThrowawayRedis redis = ThrowawayRedis.start();
         Http http = new Http();
         TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PG_URL", pg.url(), "IDEMGATE_REDIS_URL", redis.url()))) {
      assertThat(readiness(http, gateway)).isEqualTo("UP");
      assertThat(up(http, gateway, "postgres")).isEqualTo(1.0);
      assertThat(up(http, gateway, "redis")).isEqualTo(1.0);

      pg.proxy().refuse();
      pg.proxy().cutAll();
      assertThat(readiness(http, gateway)).isEqualTo("DOWN");
      assertThat(up(http, gateway, "postgres")).isEqualTo(0.0);
      assertThat(up(http, gateway, "redis")).isEqualTo(1.0);

      pg.proxy().pass();
      assertThat(readiness(http, gateway)).isEqualTo("UP");
      assertThat(up(http, gateway, "postgres")).isEqualTo(1.0);

      redis.pause();
      try {
        assertThat(readiness(http, gateway)).isEqualTo("DEGRADED");
        assertThat(up(http, gateway, "redis")).isEqualTo(0.0);
      } finally {
        redis.resume();
      }
    }
  }

  @Test
  @DisplayName("PostgreSQL that answers but takes no writes (a demoted primary, read-only): readiness is DOWN and idemgate_dependency_up 0, as for one that does not answer, since no payment can be taken")
  void readOnlyPostgresIsDown() throws Exception {
    io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
    try (ScratchDatabase db = ScratchDatabase.create(vertx, "readonly");
         TestDb admin = new TestDb(vertx);
         Http http = new Http();
         TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PG_URL", db.url()))) {
      assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(100, "tok_visa")).status())
          .isEqualTo(201);
      assertThat(readiness(http, gateway)).isEqualTo("UP");

      // What a failover leaves behind when the address still leads to the old primary, now a
      // standby: sessions open, SELECT answers, every write is refused.
      admin.query("ALTER DATABASE " + db.name() + " SET default_transaction_read_only = on");
      admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
          db.name());
      int status = 0;
      for (int i = 0; i < 20 && status != 503; i++) {
        status = http.pay(gateway.apiPort(), TestGateway.KEY_A, Http.newKey(), Http.payment(100, "tok_visa")).status();
      }
      assertThat(status).as("a payment on a read-only database").isEqualTo(503);

      assertThat(readiness(http, gateway)).as("readiness while no payment can be taken").isEqualTo("DOWN");
      assertThat(up(http, gateway, "postgres")).isEqualTo(0.0);
    } finally {
      Http.await(vertx.close());
    }
  }

  @Test
  @DisplayName("Redis that answers but takes no writes (a replica, as a failover leaves the old master): payments"
      + " go on through PostgreSQL, exactly once, and readiness is DEGRADED with idemgate_dependency_up 0, as for"
      + " a Redis that does not answer")
  void readOnlyRedisIsDegraded() {
    try (ThrowawayRedis redis = ThrowawayRedis.start();
         ThrowawayRedis newMaster = ThrowawayRedis.start();
         Http http = new Http();
         CapturedLogs gateLog = CapturedLogs.of(RedisGate.class);
         TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REDIS_URL", redis.url()))) {
      String before = Http.newKey();
      JsonObject beforeBody = Http.payment(100, "tok_visa");
      Http.Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_A, before, beforeBody);
      assertThat(first.status()).isEqualTo(201);
      assertThat(readiness(http, gateway)).isEqualTo("UP");

      // The address still leads to the old master, now a replica: PING answers, every write is refused.
      assertThat(RespCommand.call(redis.port(), "REPLICAOF", "127.0.0.1", String.valueOf(newMaster.port()))).isEqualTo("OK");
      Waits.eventually(Duration.ofSeconds(10), () -> "slave".equals(redis.role()), "the old master is a replica");
      assertThat(RespCommand.call(redis.port(), "SET", "idemgate-test:readonly", "x")).startsWith("READONLY");

      String during = Http.newKey();
      JsonObject duringBody = Http.payment(200, "tok_visa");
      Http.Reply paid = http.pay(gateway.apiPort(), TestGateway.KEY_A, during, duringBody);
      assertThat(paid.status()).as(paid.body()).isEqualTo(201);
      Http.Reply retried = http.pay(gateway.apiPort(), TestGateway.KEY_A, during, duringBody);
      assertThat(retried.status()).isEqualTo(201);
      assertThat(retried.header("Idempotent-Replayed")).isEqualTo("true");
      assertThat(retried.json().getString("id")).isEqualTo(paid.json().getString("id"));
      Http.Reply older = http.pay(gateway.apiPort(), TestGateway.KEY_A, before, beforeBody);
      assertThat(older.json().getString("id")).isEqualTo(first.json().getString("id"));
      assertThat(http.pay(gateway.apiPort(), TestGateway.KEY_A, during, Http.payment(201, "tok_visa")).status())
          .as("the same key, another payload").isEqualTo(422);
      assertThat(charges(http, gateway, during)).as("charges of the key paid while Redis was read-only").isEqualTo(1);
      assertThat(gateLog.events()).as("the gate's claims were refused by the replica")
          .anySatisfy(e -> assertThat(e.getFormattedMessage()).contains("READONLY"));

      assertThat(readiness(http, gateway)).as("readiness while Redis takes no writes").isEqualTo("DEGRADED");
      assertThat(up(http, gateway, "redis")).isEqualTo(0.0);

      assertThat(RespCommand.call(redis.port(), "REPLICAOF", "NO", "ONE")).isEqualTo("OK");
      assertThat(readiness(http, gateway)).as("readiness once it is a master again").isEqualTo("UP");
      assertThat(up(http, gateway, "redis")).isEqualTo(1.0);
    }
  }

  private static int charges(Http http, TestGateway gateway, String key) {
    Http.Reply reply = http.get(gateway.managementPort(), "/admin/simulator/charges?merchant=" + TestGateway.MERCHANT_A
        + "&key=" + key, TestGateway.ADMIN_TOKEN);
    assertThat(reply.status()).isEqualTo(200);
    return reply.json().getJsonArray("charges").size();
  }

  private static String readiness(Http http, TestGateway gateway) {
    return http.get(gateway.managementPort(), "/health/ready", null).json().getString("status");
  }

  private static double up(Http http, TestGateway gateway, String dependency) {
    String scrape = http.get(gateway.managementPort(), "/metrics", null).body();
    return Scrape.value(scrape, "idemgate_dependency_up{dependency=\"" + dependency + "\"}").orElseThrow();
  }
}
