package dev.idemgate.observability;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.ProxiedPostgres;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayRedis;
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

  private static String readiness(Http http, TestGateway gateway) {
    return http.get(gateway.managementPort(), "/health/ready", null).json().getString("status");
  }

  private static double up(Http http, TestGateway gateway, String dependency) {
    String scrape = http.get(gateway.managementPort(), "/metrics", null).body();
    return Scrape.value(scrape, "idemgate_dependency_up{dependency=\"" + dependency + "\"}").orElseThrow();
  }
}
