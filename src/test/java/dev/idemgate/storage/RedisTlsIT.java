package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.idemgate.Idemgate;
import dev.idemgate.support.ChildProcess;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * {@code rediss://}: a throwaway {@code redis-server} serving TLS only, with a certificate for
 * {@code localhost} and {@code 127.0.0.1} signed by a throwaway CA made with {@code openssl}.
 */
class RedisTlsIT {
  private static Path dir;
  private static int port;
  private static ChildProcess redis;

  @BeforeAll
  static void start() throws Exception {
    dir = Files.createTempDirectory("idemgate-redis-tls-");
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=idemgate-test-ca",
        "-keyout", "ca.key", "-out", "ca.crt");
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
        "-out", "server.csr");
    Files.writeString(dir.resolve("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "san.ext", "-out", "server.crt");
    // A second CA that signed nothing here, for the refusals.
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=another-ca",
        "-keyout", "other.key", "-out", "other.crt");
    port = TestGateway.freePort();
    // 127.0.0.2 too, an address the certificate does not name, for the host name check.
    redis = ChildProcess.start("redis-tls:" + port, List.of("redis-server", "--port", "0", "--tls-port",
        String.valueOf(port), "--bind", "127.0.0.1", "127.0.0.2", "--tls-cert-file", file("server.crt"),
        "--tls-key-file", file("server.key"), "--tls-ca-cert-file", file("ca.crt"), "--tls-auth-clients", "no",
        "--save", "", "--appendonly", "no", "--dir", dir.toString()), Map.of(), dir.resolve("redis.log"));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!listening()) {
      if (!redis.isAlive() || System.nanoTime() > deadline) {
        throw new IllegalStateException("redis-server with TLS did not start (built without TLS?):\n" + redis.logTail());
      }
      Thread.sleep(50);
    }
  }

  @AfterAll
  static void stop() {
    if (redis != null) {
      redis.close();
    }
    if (dir != null) {
      try (Stream<Path> paths = Files.walk(dir)) {
        paths.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
      } catch (IOException leftOver) {
        // a temp directory left behind is harmless
      }
    }
  }

  private static String file(String name) {
    return dir.resolve(name).toString();
  }

  private static void run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
        .redirectOutput(dir.resolve("openssl.log").toFile()).start();
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("%s: %s", String.join(" ", command),
        Files.readString(dir.resolve("openssl.log"), StandardCharsets.UTF_8)).isZero();
  }

  private static boolean listening() {
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", port), 500);
      return true;
    } catch (IOException notYet) {
      return false;
    }
  }

  /** How many keys the TLS server holds, asked with redis-cli over TLS. */
  private static long dbSize() throws IOException, InterruptedException {
    Process p = new ProcessBuilder("redis-cli", "--tls", "--cacert", file("ca.crt"), "-h", "127.0.0.1", "-p",
        String.valueOf(port), "DBSIZE").redirectErrorStream(true).start();
    assertThat(p.waitFor(10, TimeUnit.SECONDS)).isTrue();
    return Long.parseLong(new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip());
  }

  @Test
  @DisplayName("a rediss:// URL with redis_tls_ca_file: the gateway starts, reports Redis UP and gates a payment through it")
  void gatesThroughTls() throws Exception {
    long before = dbSize();
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REDIS_URL", "rediss://localhost:" + port,
            "IDEMGATE_REDIS_TLS_CA_FILE", file("ca.crt")));
        Http http = new Http()) {
      Http.Reply ready = http.get(gateway.managementPort(), "/health/ready", null);
      assertThat(ready.json().getJsonObject("checks").getString("redis")).isEqualTo("UP");
      String key = Http.newKey();
      JsonObject payment = Http.payment(100, "tok_visa");
      Http.Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, payment);
      assertThat(first.status()).isEqualTo(201);
      assertThat(dbSize()).as("the gate's record went to the TLS Redis").isGreaterThan(before);
      Http.Reply replay = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, payment);
      assertThat(replay.header("Idempotent-Replayed")).isEqualTo("true");
      assertThat(replay.json().getString("id")).isEqualTo(first.json().getString("id"));
    }
  }

  @Test
  @DisplayName("a rediss:// server whose certificate no trusted CA signed is refused at start-up, naming Redis")
  void untrustedCertificateIsRefused() {
    assertThatThrownBy(() -> TestGateway.start(Map.of("IDEMGATE_REDIS_URL", "rediss://localhost:" + port,
            "IDEMGATE_REDIS_TLS_CA_FILE", file("other.crt"))).close())
        .isInstanceOf(Idemgate.StartupFailure.class).hasMessageContaining("Redis at rediss://localhost:" + port);
    assertThatThrownBy(() -> TestGateway.start(Map.of("IDEMGATE_REDIS_URL", "rediss://localhost:" + port)).close())
        .as("without redis_tls_ca_file, the JVM's trust store, which does not hold the test CA")
        .isInstanceOf(Idemgate.StartupFailure.class).hasMessageContaining("Redis at rediss://localhost:" + port);
    assertThatThrownBy(() -> TestGateway.start(Map.of("IDEMGATE_REDIS_URL", "rediss://localhost:" + port,
            "IDEMGATE_REDIS_TLS_CA_FILE", file("other.crt"), "IDEMGATE_REDIS_AT_START", "optional")).close())
        .as("redis_at_start optional tolerates a Redis not reached, not a certificate refused")
        .isInstanceOf(Idemgate.StartupFailure.class).hasMessageContaining("Redis at rediss://localhost:" + port);
  }

  @Test
  @DisplayName("the host name is checked: a certificate that does not name the URL's host is refused")
  void hostNameIsChecked() {
    assertThatThrownBy(() -> TestGateway.start(Map.of("IDEMGATE_REDIS_URL", "rediss://127.0.0.2:" + port,
            "IDEMGATE_REDIS_TLS_CA_FILE", file("ca.crt"))).close())
        .isInstanceOf(Idemgate.StartupFailure.class).hasMessageContaining("Redis at rediss://127.0.0.2:" + port);
  }

  @Test
  @DisplayName("a redis:// URL for the TLS-only port: the server resets the connection, which stops required and, like any reset, only degrades optional")
  void plainUrlForTheTlsPortIsAReset() {
    assertThatThrownBy(() -> TestGateway.start(Map.of("IDEMGATE_REDIS_URL", "redis://localhost:" + port)).close())
        .isInstanceOf(Idemgate.StartupFailure.class).hasMessageContaining("Redis at redis://localhost:" + port)
        .hasMessageContaining("Connection reset");
    // The server sends nothing before its reset, so this cannot be told from a proxy with no Redis
    // behind it: a WARN and DEGRADED, as a mistyped host name is.
    try (TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_REDIS_URL", "redis://localhost:" + port,
            "IDEMGATE_REDIS_AT_START", "optional"));
        Http http = new Http()) {
      assertThat(http.get(gateway.managementPort(), "/health/ready", null).json().getString("status")).isEqualTo("DEGRADED");
    }
  }
}
