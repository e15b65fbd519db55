package dev.idemgate.auth;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.auth.CredentialScanner.Credential;
import dev.idemgate.config.ConfigLoader;
import dev.idemgate.support.Waits;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CredentialScannerTest {
  private static final String PLAIN = "sk_test_plain_key";
  private static final String FILED = "sk_live_Qm9vZmJhcmJhenF1eHF1dXhjb3JnZWdyYXVsdA";
  private static final String ADMIN = "admin-token-of-this-gateway";

  private static CredentialScanner scanner(Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("keys"), ApiKeyFile.line("acme", FILED) + "\n");
    MerchantKeys filed = MerchantKeys.load(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_API_KEYS", "",
        "IDEMGATE_API_KEYS_FILE", file.toString())));
    assertThat(new CredentialScanner(filed, Optional.empty()).find(FILED, null)).as("a key known by its hash alone")
        .isEqualTo(Credential.API_KEY);
    MerchantKeys keys = MerchantKeys.load(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_API_KEYS",
        "shop=" + PLAIN + ",acme=" + FILED)));
    return new CredentialScanner(keys, Optional.of(ADMIN));
  }

  @Test
  @DisplayName("a key in force (plain or from the key file, known by its hash) is found as a word or a run of key "
      + "characters inside one; the presented key and the admin token anywhere")
  void findsCredentials(@TempDir Path dir) throws Exception {
    CredentialScanner scanner = scanner(dir);
    assertThat(scanner.find(FILED, null)).isEqualTo(Credential.API_KEY);
    assertThat(scanner.find("please charge, key " + FILED + " thanks", null)).isEqualTo(Credential.API_KEY);
    assertThat(scanner.find("Authorization: Bearer " + PLAIN, null)).isEqualTo(Credential.API_KEY);
    assertThat(scanner.find("{\"key\":\"" + FILED + "\"}.", null)).isEqualTo(Credential.API_KEY);
    assertThat(scanner.find("api_key=" + PLAIN + ";", null)).isEqualTo(Credential.API_KEY);
    assertThat(scanner.find("commande\u00a0" + FILED + "\u00e9", null)).as("between non-ASCII").isEqualTo(Credential.API_KEY);
    // The presented key, when it is one in force, and the admin token are known in full: found glued to anything.
    assertThat(scanner.find("trace-" + PLAIN + "-1", PLAIN)).isEqualTo(Credential.API_KEY);
    assertThat(scanner.find("ref-" + FILED + "-2", FILED)).as("a key of the file, presented").isEqualTo(Credential.API_KEY);
    assertThat(scanner.find("x" + ADMIN + "x", null)).isEqualTo(Credential.ADMIN_TOKEN);
    assertThat(scanner.find("x" + ADMIN + "x", ADMIN)).isEqualTo(Credential.ADMIN_TOKEN);
    assertThat(scanner.redact("req-" + PLAIN, PLAIN)).isEqualTo("redacted:api_key");
    assertThat(scanner.redact(ADMIN, null)).isEqualTo("redacted:admin_token");
  }

  @Test
  @DisplayName("near misses are not credentials: a key cut short or lengthened, another key, a key glued to key "
      + "characters when it is not the request's own, short words, a presented token that is no key")
  void nearMisses(@TempDir Path dir) throws Exception {
    CredentialScanner scanner = scanner(dir);
    assertThat(scanner.find(FILED.substring(1), null)).isNull();
    assertThat(scanner.find(FILED + "x", null)).isNull();
    assertThat(scanner.find("ref-" + PLAIN, null)).isNull();
    assertThat(scanner.find("sk_test_other_key order 12 payments", null)).isNull();
    assertThat(scanner.find("short", "short")).isNull();
    assertThat(scanner.find("ref-" + PLAIN, "sk_live")).as("a presented token under 8 characters").isNull();
    assertThat(CredentialScanner.NONE.find(PLAIN, null)).isNull();
    assertThat(scanner.redact("5f1e0c2a-9b7d-4e3f-8a6b-1c0d2e4f6a8b", "sk_wrong_key_123"))
        .isEqualTo("5f1e0c2a-9b7d-4e3f-8a6b-1c0d2e4f6a8b");
    // A token that is no key is no secret: counting it let any caller blank a path in the audit log.
    assertThat(scanner.find("trace-sk_wrong_key_123-1", "sk_wrong_key_123")).isNull();
    assertThat(scanner.redact("/admin/reconciliations", "/admin/reconciliations")).isEqualTo("/admin/reconciliations");
  }

  @Test
  @DisplayName("in JSON the first member name or value holding a credential is named by its path, a name as <redacted>")
  void findsInJson(@TempDir Path dir) throws Exception {
    CredentialScanner scanner = scanner(dir);
    assertThat(scanner.findIn(new JsonObject().put("amount", 1).put("metadata", new JsonObject().put("a", "b")
        .put("note", "key " + PLAIN)), null)).isEqualTo(new CredentialScanner.Found("$.metadata.note", Credential.API_KEY));
    assertThat(scanner.findIn(new JsonObject().put("list", new JsonArray().add("x").add(ADMIN)), null))
        .isEqualTo(new CredentialScanner.Found("$.list[1]", Credential.ADMIN_TOKEN));
    assertThat(scanner.findIn(new JsonObject().put("metadata", new JsonObject().put(FILED, "x")), null))
        .isEqualTo(new CredentialScanner.Found("$.metadata.<redacted>", Credential.API_KEY));
    assertThat(scanner.findIn(new JsonObject().put("description", "order 12").put("source", "tok_visa"), "sk_x_123456"))
        .isNull();
  }

  @Test
  @DisplayName("the keys looked for are those in force now: a key added to the key file is found once the file is "
      + "reloaded, and a key removed from it no longer is")
  void followsReloads(@TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("keys"), ApiKeyFile.line("acme", FILED) + "\n");
    MerchantKeys keys = MerchantKeys.load(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_API_KEYS", "",
        "IDEMGATE_API_KEYS_FILE", file.toString())));
    CredentialScanner scanner = new CredentialScanner(keys, Optional.empty());
    String rotated = "sk_live_rotated_key_of_acme_0001";
    assertThat(scanner.find(rotated, null)).isNull();
    Vertx vertx = Vertx.vertx();
    try {
      keys.reloadEvery(vertx, Duration.ofMillis(50));
      Files.writeString(file, ApiKeyFile.line("acme", rotated) + "\n");
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      while (keys.merchantOf(rotated) == null && System.nanoTime() < deadline) {
        Waits.sleep(20);
      }
      assertThat(scanner.find("key " + rotated, null)).isEqualTo(Credential.API_KEY);
      assertThat(scanner.find("key " + FILED, null)).isNull();
    } finally {
      vertx.close().await();
    }
  }
}
