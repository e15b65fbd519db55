package dev.idemgate.support;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * A Redis server of the test's own ({@code redis-server} on a free port, no persistence, data dir in
 * a temp directory), for scenarios that kill, empty or freeze Redis: the shared Redis is never touched.
 *
 * <pre>{@code
 * try (ThrowawayRedis redis = ThrowawayRedis.start()) {
 *   ... gateway with IDEMGATE_REDIS_URL = redis.url() ...
 *   redis.kill();            // SIGKILL: every key is gone
 *   redis.restartEmpty();    // same port, empty
 *   redis.pause(); redis.resume();
 * }
 * }</pre>
 */
public final class ThrowawayRedis implements AutoCloseable {
  private static final Duration STARTUP = Duration.ofSeconds(20);

  private final int port;
  private final Path dir;
  private final List<String> extraArguments;
  private ChildProcess process;

  private ThrowawayRedis(int port, Path dir, List<String> extraArguments) {
    this.port = port;
    this.dir = dir;
    this.extraArguments = extraArguments;
  }

  /** Starts {@code redis-server} on a free port and waits until it answers PING. */
  public static ThrowawayRedis start() {
    return start(List.of());
  }

  /** Starts a replica of {@code master} ({@code --replicaof}), as a Sentinel set has. */
  public static ThrowawayRedis startReplicaOf(ThrowawayRedis master) {
    return start(List.of("--replicaof", "127.0.0.1", String.valueOf(master.port())));
  }

  /** Starts one that asks every client for {@code password} ({@code --requirepass}). */
  public static ThrowawayRedis startWithPassword(String password) {
    return start(List.of("--requirepass", password));
  }

  private static ThrowawayRedis start(List<String> extraArguments) {
    try {
      ThrowawayRedis redis = new ThrowawayRedis(TestGateway.freePort(), Files.createTempDirectory("idemgate-redis-"),
          extraArguments);
      redis.launch();
      return redis;
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The {@code role:} line of {@code INFO replication}: master or slave; null if it does not answer. */
  public String role() {
    String info = RespCommand.call(port, "INFO", "replication");
    return info == null ? null : info.lines().filter(l -> l.startsWith("role:")).map(l -> l.substring(5).strip())
        .findFirst().orElse(null);
  }

  private void launch() {
    List<String> command = new java.util.ArrayList<>(List.of("redis-server", "--port", String.valueOf(port), "--bind",
        "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir.toString()));
    command.addAll(extraArguments);
    process = ChildProcess.start("redis:" + port, command, Map.of(), dir.resolve("redis.log"));
    long deadline = System.nanoTime() + STARTUP.toNanos();
    while (!answers()) {
      if (!process.isAlive() || System.nanoTime() > deadline) {
        String tail = process.logTail();
        process.close();
        throw new IllegalStateException("redis-server on port " + port + " did not start:\n" + tail);
      }
      ChildProcess.sleep(50);
    }
  }

  /** Whether it answers: PONG, or asks for the password it was started with. */
  private boolean answers() {
    String reply = ping();
    return "+PONG".equals(reply) || reply != null && reply.startsWith("-NOAUTH");
  }

  public int port() {
    return port;
  }

  /** {@code redis://127.0.0.1:<port>}: the value for {@code IDEMGATE_REDIS_URL}. */
  public String url() {
    return "redis://127.0.0.1:" + port;
  }

  /** SIGKILL; every key is lost (there is no persistence). */
  public void kill() {
    process.kill();
  }

  /** Kills it if it runs and starts it again on the same port, empty. */
  public void restartEmpty() {
    process.close();
    launch();
  }

  /** SIGSTOP: connections stay open, nothing answers. */
  public void pause() {
    process.pause();
  }

  /** SIGCONT after {@link #pause()}. */
  public void resume() {
    process.resume();
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** How many keys the server holds ({@code DBSIZE}), or -1 if it does not answer. */
  public long dbSize() {
    String reply = command("DBSIZE");
    return reply != null && reply.startsWith(":") ? Long.parseLong(reply.substring(1)) : -1;
  }

  /** {@code +PONG}, or null if nothing answered within a second. */
  public String ping() {
    return command("PING");
  }

  /** One inline command over a fresh connection, answered with its first reply line (RESP), or null. */
  private String command(String inline) {
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", port), 1_000);
      socket.setSoTimeout(1_000);
      OutputStream out = socket.getOutputStream();
      out.write((inline + "\r\n").getBytes(StandardCharsets.US_ASCII));
      out.flush();
      InputStream in = socket.getInputStream();
      StringBuilder line = new StringBuilder();
      int c;
      while ((c = in.read()) >= 0 && c != '\r') {
        line.append((char) c);
      }
      return line.toString();
    } catch (IOException e) {
      return null;
    }
  }

  @Override
  public void close() {
    process.close();
    Cleanup.deleteTree(dir);
  }
}
