package dev.idemgate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.idemgate.config.ConfigLoader;
import dev.idemgate.config.GatewayConfig;
import io.vertx.core.Vertx;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The start-up check of Redis, refused in one line whatever the kind of deployment. */
class RedisStartupCheckTest {
  private static Vertx vertx;

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void stop() {
    vertx.close().await();
  }

  private static String refusal(String mode, String urls) {
    GatewayConfig config = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_REDIS_MODE", mode, "IDEMGATE_REDIS_URL", urls));
    Idemgate.StartupFailure failure = catchThrowableOfType(Idemgate.StartupFailure.class,
        () -> Idemgate.await(Idemgate.checkRedis(vertx, config), "Redis cannot be reached"));
    assertThat(failure).as(mode + " " + urls + " was reached").isNotNull();
    return failure.getMessage();
  }

  @Test
  @DisplayName("sentinels and cluster seeds that all refuse the connection: one line naming each endpoint's failure")
  void sentinelAndClusterRefusalsOnOneLine() {
    for (String mode : new String[] {"sentinel", "cluster"}) {
      String message = refusal(mode, "redis://127.0.0.1:1,redis://127.0.0.1:2");
      assertThat(message).as(mode).doesNotContain("\n", "\r", "Exception")
          .startsWith("Redis cannot be reached: Cannot connect to any of the provided endpoints: ")
          .contains("Connection refused: /127.0.0.1:1", "Connection refused: /127.0.0.1:2");
    }
  }

  @Test
  @DisplayName("a server that is no sentinel: its errors for each sentinel command on one line")
  void notASentinelOnOneLine() {
    String message = refusal("sentinel", "redis://127.0.0.1:6379");
    assertThat(message).doesNotContain("\n", "\r").startsWith("Redis cannot be reached: Cannot connect to any of the provided endpoints: ")
        .contains("unknown command");
  }

  @Test
  @DisplayName("a standalone Redis that refuses the connection: the cause's message, as before")
  void standaloneAsBefore() {
    assertThat(refusal("standalone", "redis://127.0.0.1:1")).doesNotContain("\n")
        .startsWith("Redis cannot be reached: ").contains("Connection refused: /127.0.0.1:1");
  }

  @Test
  @DisplayName("a database number the server does not have (its 'databases', 16 by default) stops start-up in one line")
  void databaseOutOfRange() {
    // Negative and non-numeric ones are refused at load (ConfigRefusalsTest); the upper bound is the
    // server's own, which it checks when the connection selects the database.
    assertThat(refusal("standalone", "redis://127.0.0.1:6379/99"))
        .isEqualTo("Redis cannot be reached: ERR DB index is out of range");
  }
}
