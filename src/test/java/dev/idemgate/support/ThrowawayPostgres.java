package dev.idemgate.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A PostgreSQL 15 cluster of the test's own: {@code initdb} into a temp directory, its own port, trust
 * authentication for user {@code postgres}, so scenarios can crash it ({@code pg_ctl stop -m immediate},
 * which is what a power cut looks like to the server: no checkpoint, recovery from WAL at the next start)
 * and start it again, without touching the shared database.
 *
 * <p>{@code initdb} and {@code postgres} refuse to run as root, and CI runs tests as root: then every
 * server command runs as the {@code postgres} OS user through {@code runuser}, on a directory it owns.
 * fsync is off to keep tests fast: committed data still survives a process crash (it sits in the OS
 * page cache), only an OS crash would lose it, and tests never crash the OS.
 *
 * <pre>{@code
 * try (ThrowawayPostgres pg = ThrowawayPostgres.start()) {
 *   ... gateway with IDEMGATE_PG_URL = pg.url() ...
 *   pg.crash();    // immediate stop: connections cut, no shutdown checkpoint
 *   pg.restart();  // crash recovery, same port and data
 * }
 * }</pre>
 */
public final class ThrowawayPostgres implements AutoCloseable {
  /**
   * The server binaries: {@code IDEMGATE_PG_BIN}, else where Debian's postgresql package puts the
   * newest version installed ({@code /usr/lib/postgresql/<version>/bin}).
   */
  private static final Path BIN = binaries();
  private static final long COMMAND_TIMEOUT_SECONDS = 60;

  private final int port;
  private final Path root;
  private final Path data;
  private final Thread reaper = new Thread(this::crashQuietly, "crash-throwaway-postgres");
  private volatile boolean running;
  /** Server settings for TLS, empty without it. */
  private String tlsSettings = "";
  /** The test's own server settings ({@link #startWith}), after the fixture's: each {@code -c name=value}. */
  private String ownSettings = "";

  private static Path binaries() {
    String named = System.getenv("IDEMGATE_PG_BIN");
    if (named != null) {
      return Path.of(named);
    }
    try (var versions = Files.list(Path.of("/usr/lib/postgresql"))) {
      return versions.filter(v -> v.getFileName().toString().matches("\\d+") && Files.isExecutable(v.resolve("bin/initdb")))
          .max(java.util.Comparator.comparingInt(v -> Integer.parseInt(v.getFileName().toString())))
          .map(v -> v.resolve("bin")).orElse(Path.of("/usr/lib/postgresql/15/bin"));
    } catch (IOException e) {
      return Path.of("/usr/lib/postgresql/15/bin");
    }
  }

  private ThrowawayPostgres(int port, Path root) {
    this.port = port;
    this.root = root;
    this.data = root.resolve("data");
  }

  /** initdb and start on a free port; waits until it accepts connections. */
  public static ThrowawayPostgres start() {
    return start(false, List.of());
  }

  /**
   * The same, with server settings of the test's own ({@code name=value}, as {@code postgres -c}
   * takes them), kept across {@link #restart()}; they come after the fixture's, so they win.
   */
  public static ThrowawayPostgres startWith(String... settings) {
    return start(false, List.of(settings));
  }

  /**
   * The same, serving TLS too (plain connections are still accepted) with a self-signed certificate
   * for {@code localhost} and {@code 127.0.0.1} made by {@code openssl}: {@link #certificate()}.
   */
  public static ThrowawayPostgres startWithTls() {
    return start(true, List.of());
  }

  private static ThrowawayPostgres start(boolean tls, List<String> settings) {
    Path root;
    try {
      root = Files.createTempDirectory("idemgate-pg-", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    ThrowawayPostgres pg = new ThrowawayPostgres(TestGateway.freePort(), root);
    settings.forEach(setting -> pg.ownSettings += " -c " + setting);
    try {
      if (asRoot()) {
        pg.run(List.of("chown", "postgres:postgres", root.toString()));
      }
      pg.run(asServerUser(List.of(BIN.resolve("initdb").toString(), "-D", pg.data.toString(), "-A", "trust",
          "-U", "postgres", "-E", "UTF8", "--no-sync")));
      if (tls) {
        Path key = root.resolve("server.key");
        pg.run(asServerUser(List.of("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", key.toString(), "-out", pg.certificate().toString())));
        pg.tlsSettings = " -c ssl=on -c ssl_cert_file=" + pg.certificate() + " -c ssl_key_file=" + key;
      }
      pg.restart();
      Runtime.getRuntime().addShutdownHook(pg.reaper);
      return pg;
    } catch (RuntimeException e) {
      pg.close();
      throw e;
    }
  }

  /** Starts the server again after {@link #crash()} or {@link #stop()}: crash recovery runs first if needed. */
  public void restart() {
    run(asServerUser(List.of(BIN.resolve("pg_ctl").toString(), "-D", data.toString(), "-l", root.resolve("server.log").toString(),
        "-o", "-p " + port + " -k " + root + " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100" + tlsSettings + ownSettings,
        "-w", "-t", "60", "start")));
    running = true;
  }

  private void crashQuietly() {
    if (running) {
      try {
        crash();
      } catch (RuntimeException e) {
        // the JVM is exiting; nothing more can be done
      }
    }
  }

  /** Immediate shutdown: every backend killed at once, no checkpoint; like a crash to the clients and to the data. */
  public void crash() {
    run(asServerUser(List.of(BIN.resolve("pg_ctl").toString(), "-D", data.toString(), "-m", "immediate", "-w", "stop")));
    running = false;
  }

  /** A clean, fast shutdown. */
  public void stop() {
    run(asServerUser(List.of(BIN.resolve("pg_ctl").toString(), "-D", data.toString(), "-m", "fast", "-w", "stop")));
    running = false;
  }

  /** The server's self-signed certificate (PEM), after {@link #startWithTls()}: its own CA. */
  public Path certificate() {
    return root.resolve("server.crt");
  }

  public int port() {
    return port;
  }

  /** {@code postgresql://postgres@127.0.0.1:<port>/postgres}: the value for {@code IDEMGATE_PG_URL}. */
  public String url() {
    return "postgresql://postgres@127.0.0.1:" + port + "/postgres";
  }

  public boolean isRunning() {
    return running;
  }

  @Override
  public void close() {
    try {
      if (running) {
        crash();
      }
    } finally {
      try {
        Runtime.getRuntime().removeShutdownHook(reaper);
      } catch (IllegalStateException | IllegalArgumentException e) {
        // not registered, or the JVM is already exiting
      }
      Cleanup.deleteTree(root);
    }
  }

  private static boolean asRoot() {
    return "root".equals(System.getProperty("user.name"));
  }

  private static List<String> asServerUser(List<String> command) {
    if (!asRoot()) {
      return command;
    }
    List<String> wrapped = new ArrayList<>(List.of("runuser", "-u", "postgres", "--"));
    wrapped.addAll(command);
    return wrapped;
  }

  private void run(List<String> command) {
    Path output = root.resolve("commands.log");
    try {
      // Output to a file, not a pipe: the server started by pg_ctl must not hold a pipe of ours open.
      Process process = new ProcessBuilder(command).redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.appendTo(output.toFile())).start();
      if (!process.waitFor(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        throw new IllegalStateException(String.join(" ", command) + " did not finish");
      }
      if (process.exitValue() != 0) {
        throw new IllegalStateException(String.join(" ", command) + " failed (" + process.exitValue() + "):\n"
            + Files.readString(output));
      }
    } catch (IOException e) {
      throw new IllegalStateException(String.join(" ", command) + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted: " + String.join(" ", command), e);
    }
  }
}
