package dev.idemgate.support;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The standalone acquirer simulator ({@code idemgate acquirer}) as a separate JVM, so that killing
 * or restarting a gateway never takes the provider's memory with it. Started from the shaded jar
 * (system property {@code idemgate.jar}) on a free port; {@link #start()} waits for {@code /health}.
 *
 * <pre>{@code
 * try (AcquirerProcess acquirer = AcquirerProcess.start()) {          // --dedup off
 *   TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_PROVIDER", "http",
 *       "IDEMGATE_PROVIDER_URL", acquirer.url()));
 *   ...
 *   JsonObject everything = acquirer.allCharges();                    // for ExactlyOnceChecker
 * }
 * }</pre>
 */
public final class AcquirerProcess implements AutoCloseable {
  private static final Duration STARTUP = Duration.ofSeconds(60);

  private final int port;
  private final ChildProcess process;

  private AcquirerProcess(int port, ChildProcess process) {
    this.port = port;
    this.process = process;
  }

  /** An acquirer that charges every request it gets ({@code --dedup off}), with no added latency. */
  public static AcquirerProcess start() {
    return start(false, 0, Map.of());
  }

  /**
   * @param dedup {@code --dedup on} when true
   * @param latencyMs {@code --latency-ms}
   * @param env extra environment, e.g. {@code IDEMGATE_SIMULATOR_SLOW_MS}
   */
  public static AcquirerProcess start(boolean dedup, long latencyMs, Map<String, String> env) {
    int port = TestGateway.freePort();
    Path log;
    try {
      log = Files.createTempFile("idemgate-acquirer-" + port + "-", ".log");
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    List<String> command = new ArrayList<>(List.of(ChildProcess.java(), "-Xmx128m", "-XX:TieredStopAtLevel=1",
        "-jar", ChildProcess.idemgateJar().toString(), "acquirer", "--port", String.valueOf(port),
        "--dedup", dedup ? "on" : "off", "--latency-ms", String.valueOf(latencyMs)));
    ChildProcess process = ChildProcess.start("acquirer:" + port, command, env, log);
    AcquirerProcess acquirer = new AcquirerProcess(port, process);
    try {
      process.awaitHttpOk(acquirer.url() + "/health", STARTUP);
    } catch (RuntimeException e) {
      process.close();
      throw e;
    }
    return acquirer;
  }

  public int port() {
    return port;
  }

  /** {@code http://127.0.0.1:<port>}: the value for {@code IDEMGATE_PROVIDER_URL}. */
  public String url() {
    return "http://127.0.0.1:" + port;
  }

  /** {@code GET /charges?idempotency_key=K}: {@code {"idempotency_key", "requests", "charges": [...]}}. */
  public JsonObject charges(String providerKey) {
    return new JsonObject(ChildProcess.get(url() + "/charges?idempotency_key=" + providerKey));
  }

  /** {@code GET /charges}: every charge, each with its {@code idempotency_key} (the provider key). */
  public JsonObject allCharges() {
    return new JsonObject(ChildProcess.get(url() + "/charges"));
  }

  /** The process, for {@code kill()}, {@code pause()}, {@code resume()} and its log. */
  public ChildProcess process() {
    return process;
  }

  @Override
  public void close() {
    process.close();
  }
}
