package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.CommandRun;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The reconciliation commands' refusals that come before any database is touched. */
class CommandRefusalsTest {
  private static CommandRun run(Object command, String... args) {
    return CommandRun.of(new CommandLine(command), args);
  }

  /** A configuration whose PostgreSQL nothing listens on: a command that got past its refusals fails there (exit 1), touching nothing. */
  private static Path nowhere(Path dir) throws java.io.IOException {
    return Files.writeString(dir.resolve("idemgate.yaml"), "pg_url: postgresql://postgres@127.0.0.1:1/nowhere\n");
  }

  @Test
  @DisplayName("reconcile warns on standard error, by name and never the value, of IDEMGATE_ and IDEMGATE_RECONCILIATION_ variables that set nothing")
  void reconcileWarnsOfIgnoredVariables(@TempDir Path dir) throws Exception {
    ReconcileCommand command = new ReconcileCommand();
    command.environment = Map.of("IDEMGATE_PROVDER", "value-one", "IDEMGATE_RECONCILIATION_SETTLEMNT_LAG", "value-two");
    // A file that does not exist: refused (exit 2) after the settings are read, before PostgreSQL.
    CommandRun run = run(command, "--config", nowhere(dir).toString(), "--settlement", dir.resolve("missing.csv").toString());

    assertThat(run.status()).isEqualTo(ReconcileCommand.EXIT_USAGE);
    assertThat(run.err().lines().toList()).containsExactly(
        "idemgate: warning: environment variables that name no setting, ignored: IDEMGATE_PROVDER",
        "idemgate: warning: environment variables that name no reconciliation setting, ignored: "
            + "IDEMGATE_RECONCILIATION_SETTLEMNT_LAG",
        "idemgate: " + dir.resolve("missing.csv") + ": no such file; nothing was run");
    assertThat(run.out()).isEmpty();
  }

  @Test
  @DisplayName("reconcile and settlement-demo read pg_url alone: settings only the gateway's container can satisfy (an "
      + "acquirer URL in its Secret, TLS files it mounts) do not stop them; they go on to PostgreSQL")
  void commandsIgnoreTheGatewaysOwnSettings(@TempDir Path dir) throws Exception {
    Path config = Files.writeString(dir.resolve("configmap.yaml"), "pg_url: postgresql://postgres@127.0.0.1:1/nowhere\n"
        + "provider: http\ntls_cert: /etc/idemgate/tls/tls.crt\ntls_key: /etc/idemgate/tls/tls.key\n");
    Path settlement = Files.writeString(dir.resolve("settlement.csv"), "settlement_id,provider_reference,provider_key,"
        + "merchant_id,amount,currency,status,settled_at\n");
    ReconcileCommand reconcile = new ReconcileCommand();
    reconcile.environment = Map.of();
    CommandRun reconciled = run(reconcile, "--config", config.toString(), "--settlement", settlement.toString());
    assertThat(reconciled.err()).as("reconcile").contains("127.0.0.1:1").doesNotContain("provider_url", "tls_");
    assertThat(reconciled.status()).as("reconcile: PostgreSQL unreachable, not a usage error").isNotEqualTo(ReconcileCommand.EXIT_USAGE);

    CommandRun demoRun = run(demo(), "--config", config.toString(), "--out", dir.resolve("out.csv").toString());
    assertThat(demoRun.err()).as("settlement-demo").contains("127.0.0.1:1").doesNotContain("provider_url", "tls_");
    assertThat(demoRun.status()).as("settlement-demo").isNotEqualTo(ReconcileCommand.EXIT_USAGE);
  }

  private static SettlementDemoCommand demo() {
    SettlementDemoCommand command = new SettlementDemoCommand();
    command.environment = Map.of(); // no IDEMGATE_PG_URL of the machine's
    return command;
  }

  @Test
  @DisplayName("settlement-demo --seed-ledger above 1,000,000 is refused with one line and exit 2, nothing written")
  void seedLedgerBounded(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("settlement.csv");
    String config = nowhere(dir).toString();
    CommandRun run = run(demo(), "--config", config, "--out", out.toString(), "--seed-ledger", "1000001");

    assertThat(run.status()).isEqualTo(ReconcileCommand.EXIT_USAGE);
    assertThat(run.err().lines().toList())
        .containsExactly("idemgate: --seed-ledger must be between 0 and 1000000, got 1000001; nothing was written");
    assertThat(Files.exists(out)).isFalse();
    assertThat(run(demo(), "--config", config, "--out", out.toString(), "--seed-ledger", "-1").err())
        .startsWith("idemgate: --seed-ledger must be between 0 and 1000000, got -1");
  }

  @Test
  @DisplayName("an empty --merchant-prefix is refused by reconcile and settlement-demo with one line and exit 2, nothing run or written")
  void emptyMerchantPrefixRefused(@TempDir Path dir) throws Exception {
    Path settlement = Files.writeString(dir.resolve("settlement.csv"), "");
    Path out = dir.resolve("out.csv");
    String config = nowhere(dir).toString();
    ReconcileCommand reconcile = new ReconcileCommand();
    reconcile.environment = Map.of();
    CommandRun refused = run(reconcile, "--config", config, "--settlement", settlement.toString(), "--merchant-prefix", "");

    assertThat(refused.status()).isEqualTo(ReconcileCommand.EXIT_USAGE);
    assertThat(refused.err().lines().toList()).containsExactly(
        "idemgate: --merchant-prefix must not be empty (leave it out for every merchant); nothing was run");
    assertThat(refused.out()).isEmpty();

    CommandRun demoRefused = run(demo(), "--config", config, "--out", out.toString(), "--merchant-prefix", "");
    assertThat(demoRefused.status()).isEqualTo(ReconcileCommand.EXIT_USAGE);
    assertThat(demoRefused.err().lines().toList()).containsExactly(
        "idemgate: --merchant-prefix must not be empty (leave it out for every merchant); nothing was written");
    assertThat(Files.exists(out)).isFalse();
  }
}
