package dev.idemgate.auth;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.CommandRun;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class ApiKeyCommandTest {
  private static CommandRun run(String stdin, String... args) {
    ApiKeyCommand command = new ApiKeyCommand();
    if (stdin != null) {
      command.stdin = new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8));
    }
    return CommandRun.of(new CommandLine(command), args);
  }

  @Test
  @DisplayName("api-key prints a new random key and the api_keys_file line that gives it to the merchant")
  void newKey() {
    CommandRun first = run(null, "--merchant", "acme");
    CommandRun second = run(null, "--merchant", "acme");

    assertThat(first.status()).isZero();
    String[] lines = first.out().split("\n");
    assertThat(lines).hasSize(2);
    String key = lines[0];
    assertThat(key).matches("sk_live_[A-Za-z0-9_-]{43}");
    assertThat(lines[1]).doesNotContain(key);
    assertThat(ApiKeyFile.parse(lines[1])).containsOnly(Map.entry(ApiKeyFile.hash(key), "acme"));
    assertThat(second.out().split("\n")[0]).as("each run makes another key").isNotEqualTo(key);
    assertThat(first.err()).contains("give it to the merchant");
  }

  @Test
  @DisplayName("api-key --stdin prints only the line for the key read from standard input")
  void existingKey() {
    CommandRun run = run("sk_live_existing-key-123\n", "--merchant", "globex", "--stdin");

    assertThat(run.status()).isZero();
    assertThat(run.out()).isEqualTo(ApiKeyFile.line("globex", "sk_live_existing-key-123") + "\n");
  }

  @Test
  @DisplayName("a bad merchant id, no key or one with a space on standard input, or a key as an argument, is refused with exit 2 and nothing printed")
  void refusals() {
    CommandRun badMerchant = run(null, "--merchant", "acme corp");
    assertThat(badMerchant.status()).isEqualTo(2);
    assertThat(badMerchant.out()).isEmpty();
    assertThat(badMerchant.err()).contains("--merchant");

    CommandRun noKey = run("", "--merchant", "acme", "--stdin");
    assertThat(noKey.status()).isEqualTo(2);
    assertThat(noKey.out()).isEmpty();
    assertThat(noKey.err()).contains("--stdin");

    CommandRun asArgument = run(null, "--merchant", "acme", "sk_live_given-as-argument");
    assertThat(asArgument.status()).as("a key given as an argument").isEqualTo(2);
    assertThat(asArgument.out()).isEmpty();
    assertThat(asArgument.err()).contains("--stdin").doesNotContain("given-as-argument");

    CommandRun spaced = run("sk_live_with a space\n", "--merchant", "acme", "--stdin");
    assertThat(spaced.status()).as("a key a client cannot send in Authorization: Bearer").isEqualTo(2);
    assertThat(spaced.out()).isEmpty();
    assertThat(spaced.err()).contains("--stdin").doesNotContain("with a space");
  }
}
