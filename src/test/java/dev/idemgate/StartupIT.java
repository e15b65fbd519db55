package dev.idemgate;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.SilentListener;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The packaged jar as a user runs it: start-up, health, and clear failures. */
class StartupIT {
  private static final String JAR = System.getProperty("idemgate.jar", "target/idemgate.jar");

  private record Run(int exit, String stdout, String stderr) {}

  private static Process launch(Map<String, String> env, Path out, Path err, String... args) throws IOException {
    return launch(false, env, out, err, args);
  }

  /** {@code onlyEnv}: the process gets {@code env} and PATH, nothing else of this JVM's environment. */
  private static Process launch(boolean onlyEnv, Map<String, String> env, Path out, Path err, String... args)
      throws IOException {
    List<String> command = new java.util.ArrayList<>(List.of("java", "-Xmx256m", "-jar", JAR));
    command.addAll(List.of(args));
    ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile());
    if (onlyEnv) {
      String path = builder.environment().get("PATH");
      builder.environment().clear();
      builder.environment().put("PATH", path);
    }
    builder.environment().putAll(env);
    return builder.start();
  }

  private static Run runToExit(Map<String, String> env, String... args) throws Exception {
    return runToExit(false, env, args);
  }

  private static Run runToExit(boolean onlyEnv, Map<String, String> env, String... args) throws Exception {
    Path out = Files.createTempFile("idemgate", ".out");
    Path err = Files.createTempFile("idemgate", ".err");
    Process p = launch(onlyEnv, env, out, err, args);
    boolean exited = p.waitFor(60, TimeUnit.SECONDS);
    if (!exited) {
      p.destroyForcibly(); // a hung process must not outlive the test
    }
    assertThat(exited).as("the process exits").isTrue();
    return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
  }

  private static Map<String, String> env(String pgUrl, String redisUrl) {
    Map<String, String> env = new HashMap<>();
    env.put("IDEMGATE_PG_URL", pgUrl);
    env.put("IDEMGATE_REDIS_URL", redisUrl);
    env.put("IDEMGATE_HTTP_PORT", String.valueOf(TestGateway.freePort()));
    env.put("IDEMGATE_MANAGEMENT_PORT", String.valueOf(TestGateway.freePort()));
    return env;
  }

  @Test
  @DisplayName("an unreachable PostgreSQL fails start-up with one line naming it and a non-zero exit, no stack trace")
  void postgresUnreachable() throws Exception {
    int closed = TestGateway.freePort();
    Run run = runToExit(env("postgresql://postgres@127.0.0.1:" + closed + "/postgres", TestGateway.redisUrl()));
    assertThat(run.exit()).isNotZero();
    assertThat(run.stderr().strip().lines()).hasSize(1);
    assertThat(run.stderr()).contains("PostgreSQL").contains(String.valueOf(closed)).doesNotContain("\tat ");
    assertThat(run.stdout()).doesNotContain("\tat ");
  }

  /** Within this, start-up against a silent PostgreSQL must have ended (its login timeout is 10 s). */
  private static final Duration SILENT_POSTGRES_BOUND = Duration.ofSeconds(30);

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"serve", "migrate"})
  @DisplayName("a PostgreSQL that accepts and never answers fails start-up and migrate within 30 s, with one line naming it and its host:port, no password, exit 1")
  void postgresSilent(String command) throws Exception {
    try (SilentListener silent = new SilentListener()) {
      Instant started = Instant.now();
      Run run = runToExit(env("postgresql://postgres:hush-secret@127.0.0.1:" + silent.port() + "/postgres",
          TestGateway.redisUrl()), command);
      Duration took = Duration.between(started, Instant.now());
      assertThat(silent.acceptedCount()).as("the gateway did reach the silent listener").isPositive();
      assertThat(took).isLessThan(SILENT_POSTGRES_BOUND);
      assertThat(run.exit()).isEqualTo(1);
      assertThat(run.stderr().strip().lines()).hasSize(1);
      assertThat(run.stderr()).contains("PostgreSQL at 127.0.0.1:" + silent.port())
          .contains("no answer").doesNotContain("hush-secret").doesNotContain("\tat ");
      assertThat(run.stdout()).doesNotContain("\tat ").doesNotContain("hush-secret");
    }
  }

  @Test
  @DisplayName("an unreachable Redis fails start-up with one line naming it and a non-zero exit, no stack trace")
  void redisUnreachable() throws Exception {
    int closed = TestGateway.freePort();
    Run run = runToExit(env(TestGateway.pgUrl(), "redis://127.0.0.1:" + closed));
    assertThat(run.exit()).isNotZero();
    assertThat(run.stderr().strip().lines()).hasSize(1);
    assertThat(run.stderr()).contains("Redis").contains(String.valueOf(closed)).doesNotContain("\tat ");
    assertThat(run.stdout()).doesNotContain("\tat ");
  }

  @Test
  @DisplayName("a bad setting fails with one line naming it and exit status 2")
  void badSetting() throws Exception {
    Map<String, String> env = env(TestGateway.pgUrl(), TestGateway.redisUrl());
    env.put("IDEMGATE_LEASE", "forever");
    Run run = runToExit(env);
    assertThat(run.exit()).isEqualTo(2);
    assertThat(run.stderr().strip()).startsWith("idemgate: lease:");
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "IDEMGATE_RECONCILIATION_SETTLEMENT_LAG | -3d | idemgate: settlement_lag: '-3d' is not a duration",
      "IDEMGATE_RECONCILIATION_MATCH_THRESHOLD | abc | idemgate: reconciliation match_threshold: 'abc' is not a number",
      "IDEMGATE_RECONCILIATION_CONFIG | /nonexistent/reconciliation.yaml | "
          + "idemgate: cannot read reconciliation settings /nonexistent/reconciliation.yaml: no such file"})
  @DisplayName("serve refuses a bad reconciliation setting or file with one line naming it and exit 2, before it connects to PostgreSQL")
  void badReconciliationSetting(String variable, String value, String line) throws Exception {
    // PostgreSQL there accepts and never answers: a start that reached it would take 10 s and say so.
    try (SilentListener silent = new SilentListener()) {
      Map<String, String> env = env("postgresql://postgres@127.0.0.1:" + silent.port() + "/postgres", TestGateway.redisUrl());
      env.put(variable, value);
      Run run = runToExit(env);
      assertThat(run.stderr().strip().lines()).hasSize(1).first().asString().startsWith(line);
      assertThat(run.exit()).isEqualTo(2);
      assertThat(silent.acceptedCount()).as("connections to PostgreSQL").isZero();
    }
  }

  @Test
  @DisplayName("migrate given only IDEMGATE_CONFIG and IDEMGATE_PG_URL, as Kubernetes' init container is, migrates although "
      + "the file holds settings only serve's container can satisfy (a merchant whose key is in its API keys file, "
      + "provider http with the URL in its Secret, TLS files mounted there)")
  void migrateNeedsOnlyTheConnectionString(@TempDir Path dir) throws Exception {
    String database = "idemgate_migrate_only_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    // Each of these alone is refused by serve without its container's environment and mounts.
    Path configMap = Files.writeString(dir.resolve("idemgate.yaml"), """
        merchant_key_ttl: acme=7d
        merchant_rate_limit: acme=50
        provider: http
        tls_cert: /etc/idemgate/tls/tls.crt
        tls_key: /etc/idemgate/tls/tls.key
        """);
    try (Http http = new Http(); TestDb admin = new TestDb(http.vertx())) {
      admin.query("CREATE DATABASE " + database);
      try {
        String url = TestGateway.pgUrlOf(database);
        Run run = runToExit(true, Map.of("IDEMGATE_CONFIG", configMap.toString(), "IDEMGATE_PG_URL", url), "migrate");
        assertThat(run.exit()).as("exit status; stderr: %s", run.stderr()).isZero();
        assertThat(run.stderr()).isEmpty();
        assertThat(run.stdout()).containsPattern("idemgate: schema up to date \\([1-9]\\d* migration\\(s\\) applied\\)");
        try (TestDb db = new TestDb(http.vertx(), url)) {
          assertThat(db.scalar("SELECT to_regclass('idemgate.payments') IS NOT NULL")).isEqualTo(true);
        }
      } finally {
        admin.query("DROP DATABASE " + database + " WITH (FORCE)");
      }
    }
  }

  @Test
  @DisplayName("an unknown option gets one clear line and exit status 2")
  void badArgument() throws Exception {
    Run run = runToExit(Map.of(), "serve", "--no-such-option");
    assertThat(run.exit()).isEqualTo(2);
    assertThat(run.stderr().strip().lines()).hasSize(1);
  }

  @Test
  @DisplayName("java -jar serves the public and management ports, migrating its schema, and reports ready")
  void servesAndIsReady() throws Exception {
    Map<String, String> env = env(TestGateway.pgUrl(), TestGateway.redisUrl());
    Path out = Files.createTempFile("idemgate", ".out");
    Path err = Files.createTempFile("idemgate", ".err");
    Process p = launch(env, out, err);
    try (Http http = new Http()) {
      int management = Integer.parseInt(env.get("IDEMGATE_MANAGEMENT_PORT"));
      Http.Reply ready = null;
      Instant deadline = Instant.now().plus(Duration.ofSeconds(40));
      while (Instant.now().isBefore(deadline) && p.isAlive()) {
        try {
          ready = http.get(management, "/health/ready", null);
          break;
        } catch (AssertionError notYet) {
          Thread.sleep(300);
        }
      }
      assertThat(ready).as("ready answered; stderr: %s", Files.readString(err)).isNotNull();
      assertThat(ready.status()).isEqualTo(200);
      assertThat(ready.json().getString("status")).isEqualTo("UP");
      assertThat(http.get(management, "/health/live", null).status()).isEqualTo(200);
      Http.Reply pay = http.pay(Integer.parseInt(env.get("IDEMGATE_HTTP_PORT")), "sk_test_demo", Http.newKey(),
          Http.payment(100, "tok_visa"));
      assertThat(pay.status()).isEqualTo(201);
      assertThat(Files.readString(out, StandardCharsets.UTF_8)).as("the default provider says it charges nobody")
          .contains("\"level\":\"WARN\"").contains("provider is the in-process simulator");
    } finally {
      p.destroy();
      assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    }
  }
}
