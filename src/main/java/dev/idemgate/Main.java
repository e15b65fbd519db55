package dev.idemgate;

import dev.idemgate.config.ConfigException;
import dev.idemgate.config.ConfigLoader;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.storage.Migrations;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The command line (DESIGN §8): {@code serve} (the default), {@code migrate}. */
@Command(name = "idemgate", mixinStandardHelpOptions = true, version = "idemgate 0.1.0",
    description = "Payment idempotency gateway: exactly-once POST /pay in front of payment providers.",
    subcommands = {Main.Serve.class, Main.Migrate.class,
        dev.idemgate.reconciliation.ReconcileCommand.class, dev.idemgate.reconciliation.SettlementDemoCommand.class})
public final class Main implements Callable<Integer> {
  static final int EXIT_STARTUP_FAILED = 1;
  static final int EXIT_USAGE = 2;

  public static void main(String[] args) {
    CommandLine cli = new CommandLine(new Main());
    cli.setParameterExceptionHandler((e, a) -> {
      System.err.println("idemgate: " + e.getMessage() + " (see --help)");
      return EXIT_USAGE;
    });
    int status = cli.execute(args);
    if (status != 0 || !Serve.running) {
      System.exit(status);
    }
  }

  /** No subcommand: serve. */
  @Override
  public Integer call() {
    return new Serve().call();
  }

  static GatewayConfig loadConfig(Path file) {
    return ConfigLoader.load(file == null ? ConfigLoader.defaultFile(System.getenv()) : Optional.of(file), System.getenv());
  }

  @Command(name = "serve", mixinStandardHelpOptions = true,
      description = "Run the gateway: the public API and the management port (the default command).")
  static final class Serve implements Callable<Integer> {
    static volatile boolean running;

    @Option(names = "--config", description = "YAML configuration file (default: $IDEMGATE_CONFIG, else conf/idemgate.yaml if present).")
    Path config;

    @Override
    public Integer call() {
      try {
        Idemgate gateway = Idemgate.start(loadConfig(config));
        running = true;
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
          gateway.close();
          stopped.countDown();
        }, "idemgate-shutdown"));
        return 0;
      } catch (ConfigException | Idemgate.StartupFailure | Migrations.StoreUnreachable e) {
        System.err.println("idemgate: " + e.getMessage());
        return e instanceof ConfigException ? EXIT_USAGE : EXIT_STARTUP_FAILED;
      }
    }
  }

  @Command(name = "migrate", mixinStandardHelpOptions = true, description = "Create or migrate the database schema, then exit.")
  static final class Migrate implements Callable<Integer> {
    @Option(names = "--config", description = "YAML configuration file.")
    Path config;

    @Override
    public Integer call() {
      try {
        int applied = Migrations.migrate(loadConfig(config).pgUrl());
        System.out.println("idemgate: schema up to date (" + applied + " migration(s) applied)");
        return 0;
      } catch (ConfigException | Migrations.StoreUnreachable e) {
        System.err.println("idemgate: " + e.getMessage());
        return e instanceof ConfigException ? EXIT_USAGE : EXIT_STARTUP_FAILED;
      }
    }
  }
}
