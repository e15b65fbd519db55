package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.support.TestGateway;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.core.net.SelfSignedCertificate;
import io.vertx.redis.client.RedisOptions;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class RedisClientsTest {
  @Test
  @DisplayName("a connection is closed after four redis_timeouts of reading nothing (at least 3 s), and not used"
      + " after half that: the pool recycles it then, its cleaner looking every sixteenth")
  void idleConnectionsAreLeftBeforeTheyClose() {
    GatewayConfig shortDeadline = TestGateway.config(Map.of("IDEMGATE_REDIS_TIMEOUT", "500ms"));
    assertThat(RedisClients.readIdle(shortDeadline)).isEqualTo(Duration.ofSeconds(3));
    assertThat(RedisClients.reuseLimit(shortDeadline)).isEqualTo(Duration.ofMillis(1_500));
    RedisOptions options = RedisClients.options(shortDeadline, 2, "test");
    assertThat(options.getNetClientOptions().getReadIdleTimeout()).isEqualTo(3_000);
    assertThat(options.getPoolRecycleTimeout()).isEqualTo(1_500);
    assertThat(options.getPoolCleanerInterval()).isEqualTo(187);

    GatewayConfig longDeadline = TestGateway.config(Map.of("IDEMGATE_REDIS_TIMEOUT", "2s"));
    assertThat(RedisClients.readIdle(longDeadline)).isEqualTo(Duration.ofSeconds(8));
    assertThat(RedisClients.reuseLimit(longDeadline)).as("half the read-idle time, twice the deadline")
        .isEqualTo(Duration.ofSeconds(4));
    assertThat(RedisClients.pipelineOptions(longDeadline, "test").getPoolRecycleTimeout()).isEqualTo(4_000);
  }

  @Test
  @DisplayName("opening a connection gives up after redis_timeout (at least 1 s), on every client, not after Netty's 60 s")
  void connectsHaveADeadline() {
    GatewayConfig shortDeadline = TestGateway.config(Map.of("IDEMGATE_REDIS_TIMEOUT", "200ms"));
    GatewayConfig longDeadline = TestGateway.config(Map.of("IDEMGATE_REDIS_TIMEOUT", "2s"));
    assertThat(RedisClients.pipelineOptions(shortDeadline, "test").getNetClientOptions().getConnectTimeout()).isEqualTo(1_000);
    assertThat(RedisClients.pipelineOptions(longDeadline, "test").getNetClientOptions().getConnectTimeout()).isEqualTo(2_000);
    assertThat(RedisClients.options(longDeadline, 2, "test").getNetClientOptions().getConnectTimeout()).isEqualTo(2_000);
    assertThat(RedisClients.subscriberOptions(longDeadline, "test").getNetClientOptions().getConnectTimeout()).isEqualTo(2_000);
  }

  @Test
  @DisplayName("the notifier's subscriptions wait quietly: no read-idle close, no early recycling")
  void subscriberConnectionsAreKept() {
    RedisOptions options = RedisClients.subscriberOptions(TestGateway.config(Map.of()), "test");
    assertThat(options.getNetClientOptions().getReadIdleTimeout()).isZero();
    assertThat(options.getPoolRecycleTimeout()).isEqualTo(new RedisOptions().getPoolRecycleTimeout());
  }

  @Test
  @DisplayName("rediss:// checks the server's host name, and its certificate against redis_tls_ca_file when set; redis:// has no TLS options")
  void tlsForRedissUrls() {
    // A real PEM certificate: the setting is checked at start-up.
    String ca = SelfSignedCertificate.create("redis.example").certificatePath();
    RedisOptions tls = RedisClients.options(TestGateway.config(Map.of("IDEMGATE_REDIS_URL", "rediss://:pw@redis.example:6380",
        "IDEMGATE_REDIS_TLS_CA_FILE", ca)), 1, "test");
    assertThat(tls.getNetClientOptions().getHostnameVerificationAlgorithm()).isEqualTo("HTTPS");
    assertThat(((PemTrustOptions) tls.getNetClientOptions().getTrustOptions()).getCertPaths()).containsExactly(ca);
    RedisOptions jvmTrust = RedisClients.pipelineOptions(
        TestGateway.config(Map.of("IDEMGATE_REDIS_URL", "rediss://redis.example:6380")), "test");
    assertThat(jvmTrust.getNetClientOptions().getHostnameVerificationAlgorithm()).isEqualTo("HTTPS");
    assertThat(jvmTrust.getNetClientOptions().getTrustOptions()).as("the JVM's trust store").isNull();
    RedisOptions plain = RedisClients.subscriberOptions(TestGateway.config(Map.of()), "test");
    assertThat(plain.getNetClientOptions().getHostnameVerificationAlgorithm()).isNullOrEmpty();
  }
}
