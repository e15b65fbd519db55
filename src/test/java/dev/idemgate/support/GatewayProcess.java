package dev.idemgate.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A gateway as a separate JVM ({@code java -jar idemgate.jar}), for tests that kill -9 it, freeze it
 * (SIGSTOP) past its lease, or restart it. Configured like {@link TestGateway} (same merchants, keys
 * and admin token, free ports, the real PostgreSQL and Redis), with environment overrides on top.
 *
 * <pre>{@code
 * try (GatewayProcess gateway = GatewayProcess.start(Map.of("IDEMGATE_LEASE", "2s"))) {
 *   gateway.awaitReady();
 *   ... POST /pay on gateway.apiPort() ...
 *   gateway.kill();          // SIGKILL, mid-request if you like
 *   gateway.restart();       // a new process, same ports and environment
 *   gateway.awaitReady();
 * }
 * }</pre>
 */
public final class GatewayProcess implements AutoCloseable {
  private static final Duration STARTUP = Duration.ofSeconds(90);

  private final Map<String, String> env;
  private final int apiPort;
  private final int managementPort;
  private final Path log;
  private ChildProcess process;

  private GatewayProcess(Map<String, String> env, Path log) {
    this.env = env;
    this.apiPort = Integer.parseInt(env.get("IDEMGATE_HTTP_PORT"));
    this.managementPort = Integer.parseInt(env.get("IDEMGATE_MANAGEMENT_PORT"));
    this.log = log;
  }

  /**
   * Starts the process without waiting; call {@link #awaitReady()}. {@code overrides} win over the test
   * defaults (keys are environment variable names such as {@code IDEMGATE_PROVIDER_URL}).
   */
  public static GatewayProcess start(Map<String, String> overrides) {
    Map<String, String> env = new HashMap<>();
    env.put("IDEMGATE_PG_URL", TestGateway.pgUrl());
    env.put("IDEMGATE_REDIS_URL", TestGateway.redisUrl());
    env.put("IDEMGATE_HTTP_PORT", String.valueOf(TestGateway.freePort()));
    env.put("IDEMGATE_MANAGEMENT_PORT", String.valueOf(TestGateway.freePort()));
    env.put("IDEMGATE_API_KEYS", TestGateway.MERCHANT_A + "=" + TestGateway.KEY_A + ","
        + TestGateway.MERCHANT_B + "=" + TestGateway.KEY_B);
    env.put("IDEMGATE_ADMIN_TOKEN", TestGateway.ADMIN_TOKEN);
    env.put("IDEMGATE_API_INSTANCES", "1");
    env.put("IDEMGATE_PG_POOL_SIZE", "4");
    env.putAll(overrides);
    try {
      GatewayProcess gateway = new GatewayProcess(Map.copyOf(env),
          Files.createTempFile("idemgate-gateway-" + env.get("IDEMGATE_HTTP_PORT") + "-", ".log"));
      gateway.launch();
      return gateway;
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private void launch() {
    List<String> command = List.of(ChildProcess.java(), "-Xmx256m", "-XX:TieredStopAtLevel=1", "-jar",
        ChildProcess.idemgateJar().toString());
    process = ChildProcess.start("gateway:" + apiPort, command, env, log);
  }

  /** Waits until {@code /health/ready} answers 200 (PostgreSQL and Redis reachable, not draining). */
  public GatewayProcess awaitReady() {
    process.awaitHttpOk("http://127.0.0.1:" + managementPort + "/health/ready", STARTUP);
    return this;
  }

  /** SIGKILL: no shutdown hook, no draining; in-flight requests are cut. Waits until it is gone. */
  public void kill() {
    process.kill();
  }

  /** SIGSTOP: frozen mid-flight, its leases run out while its connections stay open. */
  public void pause() {
    process.pause();
  }

  /** SIGCONT after {@link #pause()}: it wakes up late, holding epochs that may be stale. */
  public void resume() {
    process.resume();
  }

  /** Kills the process if it still runs, then starts a new one with the same ports and environment. */
  public GatewayProcess restart() {
    process.close();
    launch();
    return this;
  }

  public int apiPort() {
    return apiPort;
  }

  public int managementPort() {
    return managementPort;
  }

  public long pid() {
    return process.pid();
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** The environment the gateway runs with (after overrides). */
  public Map<String, String> env() {
    return env;
  }

  public String logTail() {
    return process.logTail();
  }

  /** The file its standard output and error go to (appended across restarts). */
  public Path logFile() {
    return process.logFile();
  }

  @Override
  public void close() {
    process.close();
  }
}
