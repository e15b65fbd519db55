package dev.idemgate.auth;

import static dev.idemgate.support.Waits.eventually;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.Idemgate;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.Scrape;
import dev.idemgate.support.TestGateway;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Production API keys: a gateway whose keys come only from a file of SHA-256 hashes, re-read while
 * it runs, against the real PostgreSQL and Redis.
 */
class ApiKeyFileIT {
  private static final String OLD_KEY = ApiKeyCommand.newKey();
  private static final String NEW_KEY = ApiKeyCommand.newKey();
  private static final Duration RELOAD_SEEN = Duration.ofSeconds(10);

  @TempDir
  Path dir;
  private Path keys;
  private Http http;

  @BeforeEach
  void setUp() {
    keys = dir.resolve("api-keys");
    http = new Http();
  }

  @AfterEach
  void tearDown() {
    http.close();
  }

  /** Replaces the file in one step, as the kubelet swaps a mounted secret. */
  private void writeKeys(String text) throws IOException {
    Path next = dir.resolve("api-keys.next");
    Files.writeString(next, text);
    Files.move(next, keys, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  private TestGateway startWithFile() {
    return TestGateway.start(Map.of("IDEMGATE_API_KEYS", "", "IDEMGATE_API_KEYS_FILE", keys.toString(),
        "IDEMGATE_API_KEYS_RELOAD_INTERVAL", "200ms"));
  }

  private int pay(TestGateway gateway, String apiKey) {
    return http.pay(gateway.apiPort(), apiKey, Http.newKey(), Http.payment(1234, "tok_visa")).status();
  }

  @Test
  @DisplayName("a key whose SHA-256 is in api_keys_file pays as its merchant; an unknown key and the plain test keys get 401")
  void hashedKeyAuthenticates() throws IOException {
    writeKeys("# acme\n" + ApiKeyFile.line("acme", OLD_KEY) + "\n");
    try (TestGateway gateway = startWithFile()) {
      Http.Reply paid = http.pay(gateway.apiPort(), OLD_KEY, Http.newKey(), Http.payment(1234, "tok_visa"));
      assertThat(paid.status()).as(paid.body()).isEqualTo(201);
      String id = paid.json().getString("id");
      assertThat(http.get(gateway.apiPort(), "/v1/payments/" + id, OLD_KEY).json().getString("id")).isEqualTo(id);

      assertThat(pay(gateway, NEW_KEY)).isEqualTo(401);
      assertThat(pay(gateway, TestGateway.KEY_A)).as("api_keys is empty: no plain key").isEqualTo(401);
      assertThat(pay(gateway, ApiKeyFile.hash(OLD_KEY))).as("the hash is not a key").isEqualTo(401);
    }
  }

  @Test
  @DisplayName("a rotated key file takes effect without a restart: the added key pays, then the removed key gets 401")
  void rotationWithoutRestart() throws IOException {
    writeKeys(ApiKeyFile.line("acme", OLD_KEY) + "\n");
    try (TestGateway gateway = startWithFile()) {
      assertThat(pay(gateway, OLD_KEY)).isEqualTo(201);
      assertThat(pay(gateway, NEW_KEY)).isEqualTo(401);

      writeKeys(ApiKeyFile.line("acme", OLD_KEY) + "\n" + ApiKeyFile.line("acme", NEW_KEY) + "\n");
      eventually(RELOAD_SEEN, () -> pay(gateway, NEW_KEY) == 201, "the added key is accepted");
      assertThat(pay(gateway, OLD_KEY)).as("both keys pay while the merchant switches").isEqualTo(201);

      writeKeys(ApiKeyFile.line("acme", NEW_KEY) + "\n");
      eventually(RELOAD_SEEN, () -> pay(gateway, OLD_KEY) == 401, "the removed key is refused");
      assertThat(pay(gateway, NEW_KEY)).isEqualTo(201);
    }
  }

  private double meter(TestGateway gateway, String series) {
    // Micrometer holds a function meter's object weakly: a collection first shows a meter whose
    // object nothing else holds (it then reads nothing).
    System.gc();
    return Scrape.value(http.get(gateway.managementPort(), "/metrics", null).body(), series).orElse(-1);
  }

  @Test
  @DisplayName("a broken new version of the key file is refused with a warning naming its line, never the key, and a meter; the keys before stay in force")
  void brokenVersionKeepsTheKeysBefore() throws IOException {
    writeKeys(ApiKeyFile.line("acme", OLD_KEY) + "\n");
    try (TestGateway gateway = startWithFile(); CapturedLogs logs = CapturedLogs.of(MerchantKeys.class)) {
      assertThat(pay(gateway, OLD_KEY)).isEqualTo(201);
      assertThat(meter(gateway, "idemgate_api_keys")).isEqualTo(1);
      assertThat(meter(gateway, "idemgate_api_keys_file_refused_total")).isZero();

      // Someone pastes the new key in plain text instead of its line.
      writeKeys(ApiKeyFile.line("acme", OLD_KEY) + "\nacme=" + NEW_KEY + "\n");
      eventually(RELOAD_SEEN, () -> logs.events().stream().anyMatch(e -> e.getLevel() == Level.WARN),
          "a warning about the refused file");

      ILoggingEvent warning = logs.events().stream().filter(e -> e.getLevel() == Level.WARN).findFirst().orElseThrow();
      assertThat(warning.getFormattedMessage()).contains("line 2", "refused", "the 1 keys read before stay in force")
          .doesNotContain(NEW_KEY);
      assertThat(pay(gateway, OLD_KEY)).isEqualTo(201);
      assertThat(pay(gateway, NEW_KEY)).isEqualTo(401);
      assertThat(logs.events().stream().filter(e -> e.getLevel() == Level.WARN)).as("each version is judged once")
          .hasSize(1);
      assertThat(meter(gateway, "idemgate_api_keys_file_refused_total")).isEqualTo(1);
      assertThat(meter(gateway, "idemgate_api_keys")).isEqualTo(1);
    }
  }

  @Test
  @DisplayName("an empty new version (a file caught mid-rewrite) is refused and the keys stay; one with only a comment revokes every key")
  void emptyVersionIsRefused() throws IOException {
    writeKeys(ApiKeyFile.line("acme", OLD_KEY) + "\n");
    try (TestGateway gateway = startWithFile(); CapturedLogs logs = CapturedLogs.of(MerchantKeys.class)) {
      writeKeys("");
      eventually(RELOAD_SEEN, () -> logs.events().stream().anyMatch(e -> e.getLevel() == Level.WARN), "the empty file refused");
      assertThat(logs.events().stream().filter(e -> e.getLevel() == Level.WARN).findFirst().orElseThrow().getFormattedMessage())
          .contains("empty", "the 1 keys read before stay in force");
      assertThat(pay(gateway, OLD_KEY)).isEqualTo(201);

      writeKeys("# every key revoked\n");
      eventually(RELOAD_SEEN, () -> pay(gateway, OLD_KEY) == 401, "a file of comments only revokes every key");
    }
  }

  @Test
  @DisplayName("a gateway whose key file is empty does not start; one with only a comment starts with no file key")
  void emptyFileStopsTheStart() throws IOException {
    writeKeys("");
    assertThatThrownBy(this::startWithFile).isInstanceOf(Idemgate.StartupFailure.class).hasMessageContaining("is empty");
    writeKeys("# no keys yet\n");
    try (TestGateway gateway = startWithFile()) {
      assertThat(pay(gateway, OLD_KEY)).isEqualTo(401);
    }
  }

  @Test
  @DisplayName("a gateway whose key file is missing or does not parse does not start, and the error names the line, never the key")
  void unusableFileStopsTheStart() throws IOException {
    assertThatThrownBy(this::startWithFile).isInstanceOf(Idemgate.StartupFailure.class)
        .hasMessageContaining("api_keys_file " + keys).hasMessageContaining("cannot be read");

    writeKeys(ApiKeyFile.line("acme", OLD_KEY) + "\nacme=" + NEW_KEY + "\n");
    assertThatThrownBy(this::startWithFile).isInstanceOf(Idemgate.StartupFailure.class)
        .hasMessageContaining("line 2").hasMessageNotContaining(NEW_KEY);
  }
}
