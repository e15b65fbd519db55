package dev.idemgate.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.IntStream;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {
  /** API keys of the merchants the per-merchant settings below name: one without a key is refused. */
  private static final String KEYS = "acme=sk_test_acme_key,shop=sk_test_shop_key,free=sk_test_free_key";

  @Test
  @DisplayName("with nothing set, the defaults of DESIGN §5 apply")
  void defaults() {
    GatewayConfig c = ConfigLoader.load(Optional.empty(), Map.of());
    assertThat(c.httpPort()).isEqualTo(8080);
    assertThat(c.managementPort()).isEqualTo(9090);
    assertThat(c.pgUrl()).isEqualTo("postgresql://postgres@127.0.0.1:5432/postgres");
    assertThat(c.redisUrl()).isEqualTo("redis://127.0.0.1:6379");
    assertThat(c.apiKeys()).containsEntry("sk_test_demo", "demo");
    assertThat(c.adminToken()).isEmpty();
    assertThat(c.keyTtl()).isEqualTo(Duration.ofHours(24));
    assertThat(c.lease()).isEqualTo(Duration.ofSeconds(30));
    assertThat(c.provider()).isEqualTo("simulator");
    assertThat(c.providerTimeout()).isEqualTo(Duration.ofSeconds(10));
    assertThat(c.recoveryInterval()).isEqualTo(Duration.ofSeconds(5));
    assertThat(c.simulatorSlowMs()).isEqualTo(2000);
  }

  @Test
  @DisplayName("the environment wins over the file, and the file over the defaults")
  void layering(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("idemgate.yaml");
    Files.writeString(file, "http_port: 8181\nlease: 10s\n");
    GatewayConfig c = ConfigLoader.load(Optional.of(file), Map.of("IDEMGATE_HTTP_PORT", "8282"));
    assertThat(c.httpPort()).isEqualTo(8282);
    assertThat(c.lease()).isEqualTo(Duration.ofSeconds(10));
  }

  @Test
  @DisplayName("a value in the file is read as the text it is written as: off is off, not YAML's false, and a number is not reinterpreted")
  void fileValuesAreText(@TempDir Path dir) throws Exception {
    // Before, SnakeYAML's YAML 1.1 types came first: `duplicate_payload_policy: off` (a documented
    // value) was refused as "got 'false'", `http_port: 1:30` became port 90 (base 60) and
    // `admin_token: 0123456701234567` the octal number's decimal digits.
    Path file = dir.resolve("idemgate.yaml");
    Files.writeString(file, "duplicate_payload_policy: off\ntracing: off\nmetrics_enabled: false\nprovider_url:\n");
    GatewayConfig c = ConfigLoader.load(Optional.of(file), Map.of());
    assertThat(c.duplicatePayloadPolicy()).isEqualTo(dev.idemgate.anomaly.DuplicatePayloadPolicy.OFF);
    assertThat(c.tracing()).isEqualTo("off");
    assertThat(c.metricsEnabled()).isFalse();
    assertThat(c.providerUrl()).isEmpty();
    Files.writeString(file, "admin_token: 0123456701234567\n");
    assertThat(ConfigLoader.load(Optional.of(file), Map.of()).adminToken()).contains("0123456701234567");
    Files.writeString(file, "http_port: 1:30\n");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.of(file), Map.of())).hasMessage("http_port: '1:30' is not a whole number");
  }

  @Test
  @DisplayName("bad values fail with one line naming the setting, and never echo an API key")
  void badValues(@TempDir Path dir) throws Exception {
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_KEY_TTL", "31d")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("key_ttl:");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_LEASE", "soon")))
        .hasMessageStartingWith("lease:");
    // Values that parse but would break the gateway at run time.
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_LEASE", "500ms")))
        .hasMessage("lease: must be at least 2s, got 500ms");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_RECOVERY_INTERVAL", "0s")))
        .hasMessageStartingWith("recovery_interval: must be at least");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_RECOVERY_BACKOFF", "5s,0ms")))
        .hasMessage("recovery_backoff: every step must be at least 10ms, got 0ms");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_STORE_TIMEOUT", "0s")))
        .hasMessageStartingWith("store_timeout:");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_REDIS_TIMEOUT", "0ms")))
        .hasMessageStartingWith("redis_timeout:");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER_TIMEOUT", "0s")))
        .hasMessageStartingWith("provider_timeout:");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER", "http")))
        .hasMessage("provider_url: must be set when provider is http");
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "https://acquirer.example:8443/v1/")).providerUrl()).contains("https://acquirer.example:8443/v1/");
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "http://[::1]:8181")).providerUrl()).contains("http://[::1]:8181");
    GatewayConfig named = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "https://acquirer.example/v1", "IDEMGATE_PROVIDER_NAME", "acme-acquirer"));
    assertThat(named.providerId()).isEqualTo("http acme-acquirer");
    assertThat(named.recoveredProviderIds()).containsExactly("http acme-acquirer", "http https://acquirer.example/v1");
    GatewayConfig unnamed = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "https://acquirer.example/v1"));
    assertThat(unnamed.providerId()).isEqualTo("http https://acquirer.example/v1");
    assertThat(unnamed.recoveredProviderIds()).containsExactly("http https://acquirer.example/v1");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER_NAME", "acme acquirer")))
        .hasMessageStartingWith("provider_name:");
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER_URL", "https://gw:s3cr3t@unused.example"))
        .toString()).as("an unused provider_url is logged without its password").doesNotContain("s3cr3t");
    // A '/' in a password must be percent-encoded for the clients, so such a URL is now refused at
    // load (ConfigRefusalsTest); the masking still hides it wherever else a URL is shown.
    assertThat(GatewayConfig.maskPassword("postgresql://gw:s3/cr3t@db:5432/pay") + " "
        + GatewayConfig.maskPassword("redis://:a/b@r1:6379,redis://:c/d@r2:6379"))
        .as("passwords holding a '/', and every URL of a list").doesNotContain("s3/cr3t", "a/b", "c/d")
        .contains("postgresql://gw:***@db:5432/pay", "redis://:***@r1:6379,redis://:***@r2:6379");
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PG_URL",
        "postgresql://gw@db:5432/pay?sslmode=require&Password=s3cr3t&application_name=gw")).toString())
        .as("a password given as a query parameter").doesNotContain("s3cr3t")
        .contains("postgresql://gw@db:5432/pay?sslmode=require&Password=***&application_name=gw");
    for (String bad : new String[] {"ftp://acquirer.example", "acquirer.example:8443", "http:///charges", "http://exa mple",
        "http://acquirer_sim:8181", "http://acquirer.example:99999", "https://acquirer.example/v1#top"}) {
      assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER", "http", "IDEMGATE_PROVIDER_URL", bad)))
          .as(bad).hasMessageStartingWith("provider_url:");
    }
    // Credentials, a query or a fragment would be ignored, and a secret logged and stored with every claim.
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "https://gw:s3cr3t-key@acquirer.example")))
        .hasMessageStartingWith("provider_url: must not carry credentials").hasMessageNotContaining("s3cr3t");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", "https://acquirer.example/v1?api_key=s3cr3t")))
        .hasMessageStartingWith("provider_url: must not have a query").hasMessageNotContaining("s3cr3t");
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_LEASE", "2s")).lease()).isEqualTo(Duration.ofSeconds(2));
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_API_KEYS", "demo=short")))
        .hasMessageStartingWith("api_keys:").hasMessageNotContaining("short");
    Path file = dir.resolve("bad.yaml");
    Files.writeString(file, "htp_port: 1\n");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.of(file), Map.of())).hasMessageContaining("unknown setting 'htp_port'");
  }

  @Test
  @DisplayName("the logged form of the configuration hides API keys, the admin token and passwords")
  void masked() {
    GatewayConfig c = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_ADMIN_TOKEN", "supersecret-admin-token",
        "IDEMGATE_PG_URL", "postgresql://app:pw123@db:5432/pay"));
    assertThat(c.toString()).doesNotContain("sk_test_demo", "supersecret", "pw123").contains("demo");
  }

  @Test
  @DisplayName("the logged form of the configuration names every setting conf/idemgate.yaml holds")
  void loggedFormNamesEverySetting() throws IOException {
    String logged = ConfigLoader.load(Optional.empty(), Map.of()).toString();
    List<String> settings = Files.readAllLines(Path.of("conf/idemgate.yaml")).stream()
        .filter(line -> line.matches("[a-z_]+:.*")).map(line -> line.substring(0, line.indexOf(':'))).toList();
    assertThat(settings).hasSizeGreaterThan(40);
    assertThat(settings).allSatisfy(setting -> assertThat(logged).as(setting).containsPattern("[\\[ ]" + setting + "="));
  }

  @Test
  @DisplayName("replay_cache_entries defaults to 20000, 0 turns the cache off, and a negative or huge value is refused")
  void replayCacheEntries() {
    assertThat(ConfigLoader.load(Optional.empty(), Map.of()).replayCacheEntries()).isEqualTo(20_000);
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_REPLAY_CACHE_ENTRIES", "0")).replayCacheEntries()).isZero();
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_REPLAY_CACHE_ENTRIES", "-1")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("replay_cache_entries:");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_REPLAY_CACHE_ENTRIES", "5000000")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("replay_cache_entries:");
  }

  @Test
  @DisplayName("pg_url with sslmode=verify-ca or verify-full and no sslrootcert is refused at start, naming what is missing")
  void pgUrlVerifyNeedsRootCert(@TempDir Path dir) throws IOException {
    for (String mode : new String[] {"verify-ca", "verify-full", "VERIFY-FULL"}) {
      assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(),
          Map.of("IDEMGATE_PG_URL", "postgresql://u@db:5432/pay?sslmode=" + mode)))
          .as(mode).isInstanceOf(ConfigException.class).hasMessageStartingWith("pg_url:").hasMessageContaining("sslrootcert=");
    }
    Path ca = Files.writeString(dir.resolve("ca.pem"), "-----BEGIN CERTIFICATE-----\n");
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PG_URL",
        "postgresql://u@db:5432/pay?sslmode=verify-full&sslrootcert=" + ca)).pgUrl()).endsWith("ca.pem");
    for (String missing : new String[] {"system", dir.resolve("nope.pem").toString()}) {
      assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(),
          Map.of("IDEMGATE_PG_URL", "postgresql://u@db:5432/pay?sslmode=verify-full&sslrootcert=" + missing)))
          .as(missing).isInstanceOf(ConfigException.class).hasMessageContaining("not a readable file");
    }
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PG_URL", "postgresql://u@db:5432/pay?sslmode=require"))
        .pgUrl()).endsWith("require");
  }

  @Test
  @DisplayName("api_instances over 256 is refused at start, not cast into a negative or absurd count")
  void apiInstancesBounded() {
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_API_INSTANCES", "256")).apiInstances()).isEqualTo(256);
    for (String bad : new String[] {"257", "4294967297"}) {
      assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_API_INSTANCES", bad)))
          .as(bad).isInstanceOf(ConfigException.class).hasMessageStartingWith("api_instances:");
    }
  }

  @Test
  @DisplayName("rate_limit is off by default; merchant_rate_limit overrides it per merchant; bad values are refused")
  void rateLimits() {
    GatewayConfig defaults = ConfigLoader.load(Optional.empty(), Map.of());
    assertThat(defaults.rateLimited()).isFalse();
    assertThat(defaults.rateLimitFor("demo")).isZero();

    GatewayConfig c = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_RATE_LIMIT", "100",
        "IDEMGATE_MERCHANT_RATE_LIMIT", " acme=500, free=0 ", "IDEMGATE_API_KEYS", KEYS));
    assertThat(c.rateLimited()).isTrue();
    assertThat(c.rateLimitFor("acme")).isEqualTo(500);
    assertThat(c.rateLimitFor("free")).isZero();
    assertThat(c.rateLimitFor("demo")).isEqualTo(100);
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_MERCHANT_RATE_LIMIT", "acme=5", "IDEMGATE_API_KEYS", KEYS))
        .rateLimited()).isTrue();
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_MERCHANT_RATE_LIMIT", "acme=0", "IDEMGATE_API_KEYS", KEYS))
        .rateLimited()).isFalse();

    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_RATE_LIMIT", "-1")))
        .hasMessage("rate_limit: requests per second, a whole number from 0 (no limit) to 1000000, got '-1'");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_RATE_LIMIT", "10/s")))
        .hasMessageStartingWith("rate_limit: requests per second");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_MERCHANT_RATE_LIMIT", "acme=lots")))
        .hasMessageStartingWith("merchant_rate_limit: acme: requests per second");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_MERCHANT_RATE_LIMIT", "500")))
        .hasMessageStartingWith("merchant_rate_limit: each entry must be merchant=requests-per-second");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_MERCHANT_RATE_LIMIT", "a{b}=5")))
        .hasMessageStartingWith("merchant_rate_limit: each entry must be merchant=requests-per-second");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_MERCHANT_RATE_LIMIT", "acme=5,acme=500")))
        .hasMessage("merchant_rate_limit: acme is given twice");
  }

  @Test
  @DisplayName("merchant_key_ttl overrides key_ttl per merchant; a bad entry, a bad duration or a merchant given twice is refused")
  void merchantKeyTtl() {
    GatewayConfig c = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_MERCHANT_KEY_TTL", "acme=7d, shop=1h",
        "IDEMGATE_API_KEYS", KEYS));
    assertThat(c.keyTtlFor("acme")).isEqualTo(Duration.ofDays(7));
    assertThat(c.keyTtlFor("shop")).isEqualTo(Duration.ofHours(1));
    assertThat(c.keyTtlFor("other")).isEqualTo(Duration.ofHours(24));
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_MERCHANT_KEY_TTL", "7d")))
        .hasMessage("merchant_key_ttl: each entry must be merchant=duration, e.g. acme=7d");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_MERCHANT_KEY_TTL", "acme=31d")))
        .hasMessage("merchant_key_ttl: acme must be between 1s and 30d");
    // Below the second the message names: a retry a moment later would be a new payment.
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_MERCHANT_KEY_TTL", "acme=500ms")))
        .hasMessage("merchant_key_ttl: acme must be between 1s and 30d");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_KEY_TTL", "999ms")))
        .hasMessage("key_ttl: must be between 1s and 30d, got 999ms");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_MERCHANT_KEY_TTL", "acme=1h,acme=2h")))
        .hasMessage("merchant_key_ttl: acme is given twice");
  }

  @Test
  @DisplayName("api_keys_file needs api_keys emptied, so the shipped demo key never stays valid beside production keys")
  void apiKeysFile() {
    assertThat(ConfigLoader.load(Optional.empty(), Map.of()).apiKeysFile()).isEmpty();
    GatewayConfig production = ConfigLoader.load(Optional.empty(),
        Map.of("IDEMGATE_API_KEYS_FILE", "/etc/idemgate/api-keys/api-keys", "IDEMGATE_API_KEYS", ""));
    assertThat(production.apiKeysFile()).contains(Path.of("/etc/idemgate/api-keys/api-keys"));
    assertThat(production.apiKeys()).isEmpty();
    assertThat(production.apiKeysReloadInterval()).isEqualTo(Duration.ofSeconds(10));
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_API_KEYS_FILE", "/etc/keys")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("api_keys and api_keys_file:")
        .hasMessageNotContaining("sk_test_demo");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_API_KEYS_FILE", "keys\0file", "IDEMGATE_API_KEYS", "")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("api_keys_file:");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_API_KEYS_RELOAD_INTERVAL", "2h")))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("api_keys_reload_interval:");
  }
  @Test
  @DisplayName("provider_key_retention defaults to 24h and must be longer than the latest moment recovery frees a held "
      + "key plus one inquiry, at most 400d; \"never seen\" is believed only about a claim younger than it")
  void providerKeyRetention() {
    GatewayConfig defaults = ConfigLoader.load(Optional.empty(), Map.of());
    assertThat(defaults.providerKeyRetention()).isEqualTo(Duration.ofHours(24));
    java.time.Instant now = java.time.Instant.parse("2026-11-30T12:00:00Z");
    assertThat(defaults.providerRemembers(now.minus(Duration.ofHours(23)), now)).isTrue();
    assertThat(defaults.providerRemembers(now.minus(Duration.ofHours(24)), now)).isFalse();
    // A held key is freed at the latest 55 s after its claim (the later of lease 30s + takeover_grace
    // 11s and lease + 2 x provider_timeout 10s = 50s, plus recovery_interval 5s), and the acquirer's
    // "never seen" then takes up to an inquiry's hold (provider_timeout + 5s = 15s) to come: 70s.
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER_KEY_RETENTION", "71s")).providerKeyRetention())
        .isEqualTo(Duration.ofSeconds(71));
    // 51s to 70s passed the old check (lease + 2 x provider_timeout, 50s), yet recovery heard the
    // acquirer's "never seen" only once it no longer counted: no such key was ever freed by itself.
    for (String bad : new String[] {"70s", "55s", "51s", "50s", "0s", "401d", "x"}) {
      assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER_KEY_RETENTION", bad)))
          .as(bad).hasMessageStartingWith("provider_key_retention:");
    }
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER_KEY_RETENTION", "70s")))
        .hasMessage("provider_key_retention: must be longer than 70s (recovery frees the key of a payment the acquirer never "
            + "saw up to 55s after its claim, and hears the acquirer's answer up to 15s later) and at most 400d, got 70s");
    // provider_timeout 1m: lease + 2 x 1m = 150s, + recovery_interval 5s, + 1m5s = 220s.
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER_KEY_RETENTION", "3m",
        "IDEMGATE_PROVIDER_TIMEOUT", "1m"))).hasMessageContaining("longer than 220s");
    // recovery_interval counts too: 1m of it puts the minimum at 50s + 1m + 15s.
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER_KEY_RETENTION", "2m",
        "IDEMGATE_RECOVERY_INTERVAL", "1m"))).hasMessageContaining("longer than 125s");
  }

  @Test
  @DisplayName("provider_max_connections defaults to 256 and must be between 1 and 4096")
  void providerMaxConnections() {
    assertThat(ConfigLoader.load(Optional.empty(), Map.of()).providerMaxConnections()).isEqualTo(256);
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER_MAX_CONNECTIONS", "1")).providerMaxConnections())
        .isEqualTo(1);
    for (String bad : new String[] {"0", "4097", "-1", "many"}) {
      assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER_MAX_CONNECTIONS", bad)))
          .as(bad).hasMessageStartingWith("provider_max_connections:");
    }
  }

  @Test
  @DisplayName("http_idle_timeout must be longer than request_body_timeout, so a stalled body gets its 408")
  void idleTimeoutOutlastsBodyTimeout() {
    assertThat(ConfigLoader.load(Optional.empty(), Map.of()).httpIdleTimeout()).isEqualTo(Duration.ofSeconds(120));
    assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_HTTP_IDLE_TIMEOUT", "30s")))
        .hasMessageStartingWith("http_idle_timeout: must be longer than request_body_timeout");
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_HTTP_IDLE_TIMEOUT", "2s",
        "IDEMGATE_REQUEST_BODY_TIMEOUT", "1s")).httpIdleTimeout()).isEqualTo(Duration.ofSeconds(2));
  }

  @Test
  @DisplayName("IDEMGATE_ variables that name no setting are listed for a warning, but not Kubernetes' service links or reconciliation's")
  void ignoredVariables() {
    Map<String, String> env = new java.util.HashMap<>();
    for (String name : new String[] {"IDEMGATE_PROVIDER_TIMEOUTS", "IDEMGATE_LEASE", "IDEMGATE_CONFIG", "IDEMGATE_PORT",
        "IDEMGATE_PORT_8080_TCP_ADDR", "IDEMGATE_SERVICE_HOST", "IDEMGATE_SERVICE_PORT_HTTP", "IDEMGATE_RECONCILIATION_CONFIG",
        "IDEMGATE_API_KEY", "PATH"}) {
      env.put(name, "x");
    }
    assertThat(ConfigLoader.ignoredVariables(env, java.util.Set.of("lease", "api_keys", "provider_timeout")))
        .containsExactly("IDEMGATE_API_KEY", "IDEMGATE_PROVIDER_TIMEOUTS");
  }

  @Test
  @DisplayName("a pending payment's inquiries follow recovery_backoff from its 202: by default 5 s, then 30 s, 2 m, "
      + "10 m and 1 h apart, then hourly; a schedule of one step repeats it")
  void inquirySchedule() {
    GatewayConfig defaults = ConfigLoader.load(Optional.empty(), Map.of());
    assertThat(IntStream.range(0, 7).mapToObj(defaults::nextInquiryAfter)).containsExactly(
        Duration.ofSeconds(5), Duration.ofSeconds(30), Duration.ofMinutes(2), Duration.ofMinutes(10),
        Duration.ofHours(1), Duration.ofHours(1), Duration.ofHours(1));
    GatewayConfig oneStep = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_RECOVERY_BACKOFF", "250ms"));
    assertThat(oneStep.nextInquiryAfter(0)).isEqualTo(Duration.ofMillis(250));
    assertThat(oneStep.nextInquiryAfter(9)).isEqualTo(Duration.ofMillis(250));
  }

  @Test
  @DisplayName("a held key is promised back no earlier than recovery may take its claim over, also with a provider "
      + "timeout under a second (where that comes after the late-charge window)")
  void heldKeyFreedWithin() {
    GatewayConfig defaults = ConfigLoader.load(Optional.empty(), Map.of());
    assertThat(defaults.heldKeyFreedWithin()).isEqualTo(defaults.lateChargeWindow().plus(defaults.recoveryInterval()));
    GatewayConfig quick = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PROVIDER_TIMEOUT", "100ms",
        "IDEMGATE_LEASE", "2s", "IDEMGATE_RECOVERY_INTERVAL", "5s"));
    // Taken over at 2 s + 1.1 s, after the late-charge window (2.2 s); released at the next pass. The late-charge
    // window alone promised 7.2 s (Retry-After 8), and a retry at 8 s could still find the key held: 409.
    assertThat(quick.heldKeyFreedWithin()).isEqualTo(Duration.ofMillis(8_100));
  }

  @Test
  @DisplayName("a password given as a query parameter is masked whole when it holds a comma, in the startup line too")
  void queryPasswordWithACommaIsMaskedWhole() {
    // A comma is a legal query character, and PostgreSQL's client takes the whole value as the password.
    GatewayConfig config = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PG_URL",
        "postgresql://gw@db:5432/pay?password=s3c,r3t-tail&sslmode=require"));
    assertThat(config.toString()).doesNotContain("r3t-tail")
        .contains("postgresql://gw@db:5432/pay?password=***&sslmode=require");
    assertThat(GatewayConfig.maskPassword("redis://r1:6379?password=a,b-tail,redis://r2:6379"))
        .as("a list of URLs still splits at the next URL").isEqualTo("redis://r1:6379?password=***,redis://r2:6379");
  }
}
