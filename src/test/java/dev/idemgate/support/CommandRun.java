package dev.idemgate.support;

import java.io.PrintWriter;
import java.io.StringWriter;
import picocli.CommandLine;

/** One run of a command line, with what it printed on standard output and standard error. */
public record CommandRun(int status, String out, String err) {

  /** Runs {@code cli} with {@code args}, its output and errors captured. */
  public static CommandRun of(CommandLine cli, String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    int status = cli.execute(args);
    return new CommandRun(status, out.toString(), err.toString());
  }
}
