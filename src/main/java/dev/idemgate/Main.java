package dev.idemgate;

import dev.idemgate.config.ConfigException;
import dev.idemgate.config.ConfigLoader;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.provider.StandaloneAcquirer;
import dev.idemgate.reconciliation.ReconciliationSettings;
import dev.idemgate.storage.Migrations;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.slf4j.bridge.SLF4JBridgeHandler;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.IExecutionStrategy;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParseResult;

/**
 * The command line (DESIGN §8): {@code serve} (the default), {@code acquirer}, {@code migrate},
 * {@code reconcile}, {@code settlement-demo}, {@code api-key} and {@code help [COMMAND]}.
 */
@Command(name = "idemgate", mixinStandardHelpOptions = true, version = "idemgate 0.1.0",
    description = "Payment idempotency gateway: exactly-once POST /pay in front of payment providers.",
    subcommands = {Main.Serve.class, Main.Acquirer.class, Main.Migrate.class,
        dev.idemgate.reconciliation.ReconcileCommand.class, dev.idemgate.reconciliation.SettlementDemoCommand.class,
        dev.idemgate.auth.ApiKeyCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Callable<Integer> {
  static final int EXIT_STARTUP_FAILED = 1;
  static final int EXIT_USAGE = 2;

  public static void main(String[] args) {
    // Libraries that log through java.util.logging (the OpenTelemetry SDK) join the JSON log.
    SLF4JBridgeHandler.removeHandlersForRootLogger();
    SLF4JBridgeHandler.install();
    int status = commandLine().execute(args);
    if (status != 0 || !(Serve.running || Acquirer.running)) {
      System.exit(status);
    }
  }

  /**
   * The command line as {@link #main} runs it: a bad argument is one line on standard error and exit
   * status {@link #EXIT_USAGE}, also when help was asked for too.
   */
  static CommandLine commandLine() {
    CommandLine cli = new CommandLine(new Main());
    cli.setParameterExceptionHandler((e, a) -> {
      String message = e.getMessage();
      // A command that keeps its stray arguments out of its messages (@Unmatched: api-key) keeps a
      // bad option value out too: "--stdin=<key>" would otherwise be printed back whole.
      if (!e.getCommandLine().getCommandSpec().unmatchedArgsBindings().isEmpty() && e.getValue() != null
          && !e.getValue().isEmpty()) {
        message = message.replace(e.getValue(), "<not shown, in case it is a key>");
      }
      e.getCommandLine().getErr().println("idemgate: " + message + " (see --help)");
      e.getCommandLine().getErr().flush();
      return EXIT_USAGE;
    });
    IExecutionStrategy run = cli.getExecutionStrategy();
    cli.setExecutionStrategy(parsed -> {
      // Picocli leaves an unknown option unreported when -h is among the arguments, and prints the
      // help with exit status 0: a script that mistyped an option alongside it would never learn.
      // A command that takes its unmatched arguments (@Unmatched: api-key, whose stray argument may
      // be a key) refuses them itself, without repeating them as picocli's message would.
      for (ParseResult command = parsed; command != null; command = command.subcommand()) {
        if (!command.unmatched().isEmpty() && command.commandSpec().unmatchedArgsBindings().isEmpty()) {
          throw new CommandLine.UnmatchedArgumentException(command.commandSpec().commandLine(), command.unmatched());
        }
      }
      return run.execute(parsed);
    });
    return cli;
  }

  /** No subcommand: serve. */
  @Override
  public Integer call() {
    return new Serve().call();
  }

  /** Exit status after a SIGTERM drain. */
  static final int EXIT_DRAIN_FAILED = 1;

  /**
   * Runs the drain and returns the status to exit with: 0, or {@link #EXIT_DRAIN_FAILED} when the
   * drain threw. Hazard: whatever it throws (even an Error, say a class that can no longer be
   * loaded because the jar was replaced under the running process), the caller must still exit;
   * a drain thread that died left the event loops running and the process up until SIGKILL.
   */
  static int drain(Runnable drain) {
    try {
      drain.run();
      return 0;
    } catch (Throwable failure) {
      System.err.println("idemgate: the drain did not finish cleanly, exiting anyway: " + failure);
      return EXIT_DRAIN_FAILED;
    }
  }

  static GatewayConfig loadConfig(Path file) {
    return ConfigLoader.load(configFile(file), System.getenv());
  }

  private static Optional<Path> configFile(Path named) {
    return ConfigLoader.namedOrDefaultFile(named, System.getenv());
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
        GatewayConfig loaded = loadConfig(config);
        // With the rest of the configuration: a bad one is refused here (exit 2), before the database is touched.
        ReconciliationSettings reconciliation = ReconciliationSettings.fromEnvironment(System.getenv());
        LogLevel.apply(loaded.logLevel());
        Idemgate gateway = Idemgate.start(loaded, reconciliation);
        running = true;
        // SIGTERM (Kubernetes) and SIGINT drain, then exit (ShutdownSignals); the hook covers any
        // other JVM exit.
        new ShutdownSignals(new ShutdownSignals.Drainable() {
          @Override
          public void startDraining() {
            gateway.startDraining();
          }

          @Override
          public void close() {
            gateway.close();
            LogLevel.flush();
          }
        }, loaded.drainTimeout(), System::exit).install();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
          gateway.close();
          LogLevel.flush();
        }, "idemgate-shutdown"));
        return 0;
      } catch (ConfigException | Idemgate.StartupFailure | Migrations.StoreUnreachable e) {
        System.err.println("idemgate: " + e.getMessage());
        return e instanceof ConfigException ? EXIT_USAGE : EXIT_STARTUP_FAILED;
      } catch (RuntimeException e) {
        // Anything else that stops start-up (a TLS certificate that does not parse, say): one line
        // still, and the exit status of a failed start, not picocli's stack trace.
        // The trace goes to the log (stdout, JSON), for whoever has to find the cause.
        org.slf4j.LoggerFactory.getLogger(Main.class).error("start-up failed", e);
        System.err.println("idemgate: start-up failed: " + e);
        return EXIT_STARTUP_FAILED;
      }
    }
  }

  @Command(name = "acquirer", mixinStandardHelpOptions = true,
      description = "Run the standalone acquirer simulator that the http provider connector talks to (DESIGN §4).")
  static final class Acquirer implements Callable<Integer> {
    static volatile boolean running;

    @Option(names = "--port", description = "Port to listen on (default: ${DEFAULT-VALUE}).", defaultValue = "8181")
    int port;

    @Option(names = "--dedup", description = "on: a provider key already charged gets its first charge back; "
        + "off: every request is charged, like a provider without idempotency (default: ${DEFAULT-VALUE}).",
        defaultValue = "on", converter = OnOff.class)
    Switch dedup;

    @Option(names = "--latency-ms", description = "Latency added to every call (default: $IDEMGATE_SIMULATOR_LATENCY_MS, else 0).")
    Long latencyMs;

    @Option(names = "--config", description = "YAML configuration file, for the simulator_* settings.")
    Path config;

    @Override
    public Integer call() {
      try {
        ConfigLoader.ForAcquirer settings = ConfigLoader.loadForAcquirer(configFile(config), System.getenv());
        LogLevel.apply(settings.logLevel());
        if (port < 0 || port > 65535) {
          throw new ConfigException("--port: must be a port number 0-65535, got " + port);
        }
        long latency = latencyMs != null ? latencyMs : settings.simulatorLatencyMs();
        if (latency < 0 || latency > ConfigLoader.MAX_SIMULATOR_LATENCY_MS) {
          throw new ConfigException("--latency-ms: must be between 0 and " + ConfigLoader.MAX_SIMULATOR_LATENCY_MS
              + " (2 minutes), got " + latency);
        }
        StandaloneAcquirer acquirer = StandaloneAcquirer.start(port, latency, settings.simulatorSlowMs(), dedup == Switch.ON);
        running = true;
        Runtime.getRuntime().addShutdownHook(new Thread(acquirer::close, "idemgate-acquirer-shutdown"));
        return 0;
      } catch (ConfigException | Idemgate.StartupFailure e) {
        System.err.println("idemgate: " + e.getMessage());
        return e instanceof ConfigException ? EXIT_USAGE : EXIT_STARTUP_FAILED;
      }
    }
  }

  /** A switch given as {@code on} or {@code off} on the command line, such as {@code --dedup}. */
  enum Switch { ON, OFF }

  static final class OnOff implements CommandLine.ITypeConverter<Switch> {
    @Override
    public Switch convert(String value) {
      if (value.equalsIgnoreCase("on")) {
        return Switch.ON;
      } else if (value.equalsIgnoreCase("off")) {
        return Switch.OFF;
      }
      throw new CommandLine.TypeConversionException("expected on or off, got '" + value + "'");
    }
  }

  /**
   * Reads pg_url alone (ConfigLoader#loadPgUrl): run as Kubernetes' init container, it has the
   * ConfigMap and the connection string but not what the gateway's container adds for the other
   * settings, which it does not use.
   */
  @Command(name = "migrate", mixinStandardHelpOptions = true, description = {"Create or migrate the database schema, then exit.",
      "Uses pg_url only: the configuration file must parse and name only known settings, the other settings' values are not checked."})
  static final class Migrate implements Callable<Integer> {
    @Option(names = "--config", description = "YAML configuration file (default: $IDEMGATE_CONFIG, else conf/idemgate.yaml if present).")
    Path config;

    @Override
    public Integer call() {
      try {
        int applied = Migrations.migrate(ConfigLoader.loadPgUrl(configFile(config), System.getenv()));
        System.out.println("idemgate: schema up to date (" + applied + " migration(s) applied)");
        return 0;
      } catch (ConfigException | Migrations.StoreUnreachable e) {
        System.err.println("idemgate: " + e.getMessage());
        return e instanceof ConfigException ? EXIT_USAGE : EXIT_STARTUP_FAILED;
      }
    }
  }
}
