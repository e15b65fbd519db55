package dev.idemgate.bench;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * {@code idemgate-bench}: the load generator and baselines that {@code bench/run.sh} drives. Each
 * subcommand stops by itself (bounded duration or request count) and writes its figures as one
 * JSON line, so the runner can put them side by side.
 */
@Command(name = "idemgate-bench", mixinStandardHelpOptions = true, version = "idemgate-bench 0.1.0",
    description = "Load generator, bare Vert.x baseline and report for the Idemgate benchmark kit.",
    subcommands = {BareCommand.class, OpenLoopCommand.class, ClosedLoopCommand.class, PrimeCommand.class,
        StormCommand.class, RecordCommand.class, ReportCommand.class})
public final class BenchCommand {
  public static void main(String[] args) {
    // The runner appends scenario-specific options after its common ones: the last one wins.
    CommandLine cli = new CommandLine(new BenchCommand()).setOverwrittenOptionsAllowed(true);
    cli.setParameterExceptionHandler((e, a) -> {
      System.err.println("idemgate-bench: " + e.getMessage() + " (see --help)");
      return 2;
    });
    // A failed run is one clear line for the runner's log, not a stack trace.
    cli.setExecutionExceptionHandler((e, c, parsed) -> {
      System.err.println("idemgate-bench " + c.getCommandName() + ": " + e);
      return 1;
    });
    System.exit(cli.execute(args));
  }
}
