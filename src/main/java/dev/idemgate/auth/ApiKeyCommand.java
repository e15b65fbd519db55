package dev.idemgate.auth;

import dev.idemgate.config.GatewayConfig;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Unmatched;

/**
 * {@code idemgate api-key}: makes a merchant's API key and the {@code api_keys_file} line that
 * accepts it, or (with {@code --stdin}) the line for a key the merchant already has. A key is
 * never taken as an argument: arguments show in {@code ps} and in shell history.
 */
@Command(name = "api-key", mixinStandardHelpOptions = true,
    description = {"Make a new API key for a merchant and print it with its line for api_keys_file "
        + "(merchant=sha256:<hex>): the key goes to the merchant, only the line goes in the file.",
        "With --stdin, print the line for an existing key read from standard input."})
public final class ApiKeyCommand implements Callable<Integer> {
  static final int EXIT_OK = 0;
  static final int EXIT_USAGE = 2;
  /** 32 random bytes: 256 bits, so the key's SHA-256 alone is safe to store. */
  private static final int KEY_BYTES = 32;
  private static final SecureRandom RANDOM = new SecureRandom();

  @Spec
  CommandSpec spec;

  @Option(names = "--merchant", required = true, description = "The merchant id the key authenticates as.")
  String merchant;

  @Option(names = "--stdin", description = "Read an existing key from standard input (its first line) instead of making one.")
  boolean fromStdin;

  /**
   * Arguments this command does not take. Taken here rather than refused by picocli, whose message
   * repeats them: the likeliest is a key given as an argument, which must not be printed again.
   */
  @Unmatched
  List<String> unexpected;

  /** Where --stdin reads; tests give their own. */
  InputStream stdin = System.in;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    if (unexpected != null && !unexpected.isEmpty()) {
      err.println("idemgate: api-key takes only --merchant and --stdin; " + unexpected.size() + " other argument(s) "
          + "not shown, in case one is a key: give an existing key on standard input with --stdin (see --help)");
      return EXIT_USAGE;
    }
    if (!GatewayConfig.MERCHANT_ID.matcher(merchant).matches()) {
      err.println("idemgate: --merchant must be 1-64 of A-Z a-z 0-9 _ . -");
      return EXIT_USAGE;
    }
    if (fromStdin) {
      String key = firstLine(stdin);
      if (key == null || !GatewayConfig.API_KEY.matcher(key.strip()).matches()) {
        err.println("idemgate: --stdin: give the key on the first line of standard input (8 or more visible ASCII "
            + "characters, no spaces: it is sent in Authorization: Bearer)");
        return EXIT_USAGE;
      }
      out.println(ApiKeyFile.line(merchant, key.strip()));
      return EXIT_OK;
    }
    String key = newKey();
    out.println(key);
    out.println(ApiKeyFile.line(merchant, key));
    err.println("idemgate: line 1 is the new API key of merchant " + merchant + ": give it to the merchant, it is "
        + "not kept anywhere. Line 2 goes in api_keys_file.");
    return EXIT_OK;
  }

  /** {@code sk_live_} and 43 URL-safe characters from a cryptographic random source. */
  static String newKey() {
    byte[] bytes = new byte[KEY_BYTES];
    RANDOM.nextBytes(bytes);
    return "sk_live_" + Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
  }

  private static String firstLine(InputStream in) {
    try {
      return new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8)).readLine();
    } catch (IOException e) {
      return null;
    }
  }
}
