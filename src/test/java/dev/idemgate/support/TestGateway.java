package dev.idemgate.support;

import dev.idemgate.Idemgate;
import dev.idemgate.config.ConfigLoader;
import dev.idemgate.config.GatewayConfig;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A gateway started in the test JVM against the real PostgreSQL and Redis
 * ({@code IDEMGATE_PG_URL} / {@code IDEMGATE_REDIS_URL}, else the local defaults), on free ports,
 * with two merchants and an admin token. Tests use fresh random keys, so they share the databases
 * without flushing anything.
 */
public final class TestGateway implements AutoCloseable {
  public static final String MERCHANT_A = "merchant_a";
  public static final String MERCHANT_B = "merchant_b";
  public static final String KEY_A = "sk_test_merchant_a";
  public static final String KEY_B = "sk_test_merchant_b";
  public static final String ADMIN_TOKEN = "test-admin-token";

  private final Idemgate gateway;
  private final GatewayConfig config;

  private TestGateway(Idemgate gateway) {
    this.gateway = gateway;
    this.config = gateway.config();
  }

  public static TestGateway start() {
    return start(Map.of());
  }

  /** Starts with the test defaults, overridden by {@code overrides} (keys as environment variable names). */
  public static TestGateway start(Map<String, String> overrides) {
    return new TestGateway(Idemgate.start(config(overrides)));
  }

  /** Starts with spans going to the given OpenTelemetry (for tracing tests). */
  public static TestGateway start(Map<String, String> overrides, io.opentelemetry.api.OpenTelemetry openTelemetry) {
    return new TestGateway(Idemgate.start(config(overrides), Optional.of(openTelemetry)));
  }

  /** The configuration a test gateway would use, without starting it. */
  public static GatewayConfig config(Map<String, String> overrides) {
    Map<String, String> env = new HashMap<>();
    env.put("IDEMGATE_PG_URL", pgUrl());
    env.put("IDEMGATE_REDIS_URL", redisUrl());
    env.put("IDEMGATE_HTTP_PORT", String.valueOf(freePort()));
    env.put("IDEMGATE_MANAGEMENT_PORT", String.valueOf(freePort()));
    env.put("IDEMGATE_API_KEYS", MERCHANT_A + "=" + KEY_A + "," + MERCHANT_B + "=" + KEY_B);
    env.put("IDEMGATE_ADMIN_TOKEN", ADMIN_TOKEN);
    env.put("IDEMGATE_API_INSTANCES", "2");
    env.put("IDEMGATE_PG_POOL_SIZE", "4");
    env.putAll(overrides);
    return ConfigLoader.load(Optional.empty(), env);
  }

  public static String pgUrl() {
    return System.getenv().getOrDefault("IDEMGATE_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres");
  }

  /** The test server's URL with another database, for a test that creates (and drops) its own. */
  public static String pgUrlOf(String database) {
    try {
      URI uri = new URI(pgUrl().replaceFirst("^postgres://", "postgresql://"));
      return new URI(uri.getScheme(), uri.getUserInfo(), uri.getHost(), uri.getPort(), "/" + database, uri.getQuery(), null).toString();
    } catch (URISyntaxException e) {
      throw new IllegalStateException("IDEMGATE_PG_URL is not a URL", e);
    }
  }

  public static String redisUrl() {
    return System.getenv().getOrDefault("IDEMGATE_REDIS_URL", "redis://127.0.0.1:6379");
  }

  /*
   * Ports for servers a test starts, bound later by whoever gets them. They come from below the
   * kernel's ephemeral range (32768 and up here): an ephemeral port found free could be handed to
   * one of this JVM's own outgoing connections (PostgreSQL, Redis, the acquirer) before the server
   * binds it. Each JVM starts at its own random point, so test JVMs running side by side (helpers'
   * worktrees) rarely walk the same ports at the same time; a port something already listens on
   * is skipped.
   */
  private static final int FIRST_PORT = 20_000;
  private static final int PORT_SPAN = 12_000;
  private static final AtomicInteger NEXT_PORT =
      new AtomicInteger(ThreadLocalRandom.current().nextInt(PORT_SPAN));

  public static int freePort() {
    for (int attempt = 0; attempt < 1_000; attempt++) {
      int port = FIRST_PORT + Math.floorMod(NEXT_PORT.getAndIncrement(), PORT_SPAN);
      try (ServerSocket socket = new ServerSocket(port)) {
        return port;
      } catch (IOException taken) {
        // in use: try the next one
      }
    }
    throw new IllegalStateException("no free port in " + FIRST_PORT + "-" + (FIRST_PORT + PORT_SPAN - 1));
  }

  public GatewayConfig config() {
    return config;
  }

  public Idemgate gateway() {
    return gateway;
  }

  public int apiPort() {
    return config.httpPort();
  }

  public int managementPort() {
    return config.managementPort();
  }

  @Override
  public void close() {
    gateway.close();
  }
}
