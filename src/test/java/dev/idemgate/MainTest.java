package dev.idemgate;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.CommandRun;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class MainTest {
  @Test
  @DisplayName("a drain that finishes exits 0")
  void cleanDrainExitsZero() {
    boolean[] ran = {false};
    assertThat(Main.drain(() -> ran[0] = true)).isZero();
    assertThat(ran[0]).isTrue();
  }

  @Test
  @DisplayName("a drain that throws, even an Error, still gives an exit status instead of killing the drain thread")
  void failedDrainStillExits() {
    assertThat(Main.drain(() -> {
      throw new NoClassDefFoundError("ch/qos/logback/core/LifeCycleManager");
    })).isEqualTo(Main.EXIT_DRAIN_FAILED);
    assertThat(Main.drain(() -> {
      throw new IllegalStateException("vert.x did not close");
    })).isEqualTo(Main.EXIT_DRAIN_FAILED);
  }

  @Test
  @DisplayName("migrate with a malformed pg_url exits 2 with one line naming pg_url, without its password or a stack trace")
  void migrateRefusesBadPgUrl(@TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("idemgate.yaml"), "pg_url: postgresql://postgres:PGSECRET@127.0.0.1:99999/db\n");
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream before = System.err;
    int status;
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      status = new CommandLine(new Main()).execute("migrate", "--config", file.toString());
    } finally {
      System.setErr(before);
    }
    String printed = err.toString(StandardCharsets.UTF_8);
    assertThat(status).isEqualTo(Main.EXIT_USAGE);
    assertThat(printed.lines()).hasSize(1).first().asString().startsWith("idemgate: pg_url: the port must be a number 1-65535");
    assertThat(printed).doesNotContain("SECRET");
  }

  @Test
  @DisplayName("migrate leaves alone the settings it does not use, bad as they may be here, and goes on to PostgreSQL")
  void migrateIgnoresSettingsItDoesNotUse(@TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("idemgate.yaml"), """
        pg_url: postgresql://postgres@127.0.0.1:1/postgres
        merchant_key_ttl: nobody=7d
        provider: http
        lease: forever
        """);
    CommandRun run = runPrintingToSystemErr("migrate", "--config", file.toString());
    assertThat(run.err().lines()).as("stderr").hasSize(1).first().asString()
        .startsWith("idemgate: PostgreSQL at 127.0.0.1:1/postgres cannot be reached");
    assertThat(run.status()).isEqualTo(Main.EXIT_STARTUP_FAILED);
  }

  @Test
  @DisplayName("migrate still refuses, with exit 2 and one line, a file that names an unknown setting or is not YAML")
  void migrateRefusesUnknownSettingAndBadYaml(@TempDir Path dir) throws Exception {
    Path misspelt = Files.writeString(dir.resolve("misspelt.yaml"), "pg_ulr: postgresql://postgres@127.0.0.1:1/postgres\n");
    CommandRun unknown = runPrintingToSystemErr("migrate", "--config", misspelt.toString());
    assertThat(unknown.status()).isEqualTo(Main.EXIT_USAGE);
    assertThat(unknown.err().lines()).hasSize(1).first().asString()
        .isEqualTo("idemgate: " + misspelt + ": unknown setting 'pg_ulr'");

    Path broken = Files.writeString(dir.resolve("broken.yaml"), "pg_url: [unclosed\n");
    CommandRun notYaml = runPrintingToSystemErr("migrate", "--config", broken.toString());
    assertThat(notYaml.status()).isEqualTo(Main.EXIT_USAGE);
    assertThat(notYaml.err().lines()).hasSize(1).first().asString().startsWith("idemgate: " + broken);

    CommandRun missing = runPrintingToSystemErr("migrate", "--config", dir.resolve("absent.yaml").toString());
    assertThat(missing.status()).isEqualTo(Main.EXIT_USAGE);
    assertThat(missing.err().lines()).hasSize(1).first().asString().endsWith("absent.yaml: no such file");
  }

  @Test
  @DisplayName("acquirer reads only its own settings (simulator_*, log_level): the gateway's, bad as they may be where it "
      + "runs beside the gateway's ConfigMap, are left alone; its own, and an unknown setting, are still refused")
  void acquirerIgnoresTheGatewaysSettings(@TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("idemgate.yaml"), """
        pg_url: not-a-url
        api_keys: garbage
        provider: http
        simulator_slow_ms: 10
        """);
    // An impossible port, refused after the settings are read: so no acquirer starts here.
    CommandRun gatewaySettings = runPrintingToSystemErr("acquirer", "--config", file.toString(), "--port", "70000");
    assertThat(gatewaySettings.err().lines()).as("stderr").hasSize(1).first().asString()
        .isEqualTo("idemgate: --port: must be a port number 0-65535, got 70000");
    assertThat(gatewaySettings.status()).isEqualTo(Main.EXIT_USAGE);

    Path own = Files.writeString(dir.resolve("own.yaml"), "simulator_latency_ms: 120001\npg_url: not-a-url\n");
    CommandRun ownSetting = runPrintingToSystemErr("acquirer", "--config", own.toString(), "--port", "70000");
    assertThat(ownSetting.err().lines()).hasSize(1).first().asString().startsWith("idemgate: simulator_latency_ms: ");
    assertThat(ownSetting.status()).isEqualTo(Main.EXIT_USAGE);

    Path misspelt = Files.writeString(dir.resolve("misspelt.yaml"), "simulator_slow: 10\n");
    CommandRun unknown = runPrintingToSystemErr("acquirer", "--config", misspelt.toString(), "--port", "70000");
    assertThat(unknown.err().lines()).hasSize(1).first().asString()
        .isEqualTo("idemgate: " + misspelt + ": unknown setting 'simulator_slow'");
    assertThat(unknown.status()).isEqualTo(Main.EXIT_USAGE);
  }

  @Test
  @DisplayName("serve with a malformed otlp_endpoint exits 2 with one line naming otlp_endpoint, without the URL, before anything starts")
  void serveRefusesBadOtlpEndpoint(@TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("idemgate.yaml"),
        "tracing: otlp\notlp_endpoint: \"http://otel collector:4318/SECRET\"\n");
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream before = System.err;
    int status;
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      status = new CommandLine(new Main()).execute("serve", "--config", file.toString());
    } finally {
      System.setErr(before);
    }
    String printed = err.toString(StandardCharsets.UTF_8);
    assertThat(printed.lines()).hasSize(1).first().asString().startsWith("idemgate: otlp_endpoint: not a URL");
    assertThat(printed).doesNotContain("SECRET");
    assertThat(status).isEqualTo(Main.EXIT_USAGE);
  }

  private static CommandRun run(String... args) {
    return CommandRun.of(Main.commandLine(), args);
  }

  /** As {@link #run}, for a command that prints its failure on System.err itself (serve, migrate), captured too. */
  private static CommandRun runPrintingToSystemErr(String... args) {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream before = System.err;
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    CommandRun run;
    try {
      run = run(args);
    } finally {
      System.setErr(before);
    }
    return new CommandRun(run.status(), run.out(), run.err() + err.toString(StandardCharsets.UTF_8));
  }

  @Test
  @DisplayName("an unknown option is refused with exit 2 even beside -h, which alone still prints the help and exits 0")
  void unknownOptionBesideHelp() {
    CommandRun refused = run("serve", "-h", "--bogus");
    assertThat(refused.status()).isEqualTo(Main.EXIT_USAGE);
    assertThat(refused.err().lines().toList()).containsExactly("idemgate: Unknown option: '--bogus' (see --help)");
    assertThat(refused.out()).isEmpty();
    assertThat(run("--help", "--bogus").status()).isEqualTo(Main.EXIT_USAGE);

    CommandRun help = run("serve", "-h");
    assertThat(help.status()).isZero();
    assertThat(help.out()).contains("Usage: idemgate serve");
  }

  @Test
  @DisplayName("a key given to api-key as an argument by mistake is refused without being printed, through the whole command line")
  void apiKeyArgumentNotEchoed() {
    CommandRun refused = run("api-key", "--merchant", "m1", "sk_live_NOT_TO_BE_PRINTED");
    assertThat(refused.status()).isEqualTo(Main.EXIT_USAGE);
    assertThat(refused.err()).contains("not shown").doesNotContain("NOT_TO_BE_PRINTED");
    assertThat(refused.out()).doesNotContain("NOT_TO_BE_PRINTED");
  }

  @Test
  @DisplayName("a key given to api-key as the value of a switch (--stdin=KEY) is refused without being printed")
  void apiKeyAsSwitchValueNotEchoed() {
    for (String option : new String[] {"--stdin", "--help", "--version"}) {
      CommandRun refused = run("api-key", "--merchant", "m1", option + "=sk_live_NOT_TO_BE_PRINTED");
      assertThat(refused.status()).as(option).isEqualTo(Main.EXIT_USAGE);
      assertThat(refused.err()).as(option).contains(option, "not shown").doesNotContain("NOT_TO_BE_PRINTED");
      assertThat(refused.out()).as(option).doesNotContain("NOT_TO_BE_PRINTED");
    }
  }

  @Test
  @DisplayName("idemgate help lists the commands, help COMMAND prints its usage, help of no such command exits 2")
  void helpCommand() {
    CommandRun all = run("help");
    assertThat(all.status()).isZero();
    assertThat(all.out()).contains("Usage: idemgate", "serve", "reconcile", "settlement-demo", "api-key", "help");

    CommandRun reconcile = run("help", "reconcile");
    assertThat(reconcile.status()).isZero();
    assertThat(reconcile.out()).contains("Usage: idemgate reconcile", "--settlement");

    CommandRun unknown = run("help", "nosuch");
    assertThat(unknown.status()).isEqualTo(Main.EXIT_USAGE);
    assertThat(unknown.err()).startsWith("idemgate: Unknown subcommand 'nosuch'");
  }
}
