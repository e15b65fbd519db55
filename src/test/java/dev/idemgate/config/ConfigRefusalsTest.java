package dev.idemgate.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.net.SelfSignedCertificate;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Settings refused at load, each with one line that names it and never echoes a secret. */
class ConfigRefusalsTest {
  private static GatewayConfig load(Map<String, String> env) {
    return ConfigLoader.load(Optional.empty(), env);
  }

  private static String refusal(Map<String, String> env) {
    try {
      load(env);
    } catch (ConfigException e) {
      return e.getMessage();
    }
    throw new AssertionError("accepted: " + env);
  }

  @Test
  @DisplayName("a malformed pg_url is refused naming pg_url and what is wrong, its password never in the line")
  void badPgUrlNeverEchoesThePassword() {
    Map<String, String> expected = Map.of(
        "postgresql://postgres:PGSECRET@127.0.0.1:99999/db", "pg_url: the port must be a number 1-65535",
        "postgresql://postgres:PGSECRET@127.0.0.1:0/db", "pg_url: the port must be a number 1-65535",
        "postgresql://postgres:PG%zzSECRET@127.0.0.1:5432/db", "pg_url: the user name or password holds a % that is not "
            + "followed by two hex digits",
        "postgresql://postgres:PG SECRET@127.0.0.1:5432/db", "pg_url: the user name or password holds a space",
        "postgresql://postgres:PG/SECRET@127.0.0.1:5432/db", "pg_url: the port must be a number 1-65535",
        "postgres://postgres:PGSECRET@127.0.0.1:54x32/db", "pg_url: the port must be a number 1-65535");
    expected.forEach((url, message) -> {
      String line = refusal(Map.of("IDEMGATE_PG_URL", url));
      assertThat(line).as(url).startsWith(message).doesNotContain("SECRET").doesNotContain("PG").doesNotContain("\n");
    });
  }

  @Test
  @DisplayName("a pg_url that asks for TLS only in words the client does not read (ssl=true, requiressl, ssl_mode) is "
      + "refused naming them: the gateway would connect in plain text; sslmode or sslrootcert given twice is refused; "
      + "with sslmode given, or other TLS parameters, it is taken as before")
  void unreadTlsParametersInPgUrl() {
    Map<String, String> expected = Map.of(
        "postgresql://u:PGSECRET@db.example:5432/pay?ssl=true", "pg_url: parameter ssl is not read",
        "postgresql://u:PGSECRET@db.example:5432/pay?requiressl=1", "pg_url: parameter requiressl is not read",
        "postgresql://u:PGSECRET@db.example:5432/pay?ssl_mode=require", "pg_url: parameter ssl_mode is not read",
        "postgresql://u:PGSECRET@db.example:5432/pay?sslmode=disable&sslmode=verify-full", "pg_url: sslmode is given twice",
        "postgresql://u:PGSECRET@db.example:5432/pay?SSLMODE=require&sslmode=disable", "pg_url: sslmode is given twice");
    expected.forEach((url, message) -> {
      String line = refusal(Map.of("IDEMGATE_PG_URL", url));
      assertThat(line).as(url).startsWith(message).doesNotContain("PGSECRET");
    });
    for (String taken : List.of("postgresql://u@db.example/pay?sslMode=require", "postgresql://u@db.example/pay?ssl=false",
        "postgresql://u@db.example/pay?sslmode=require&ssl=true", "postgresql://u@db.example/pay?sslmode=require&sslsni=1",
        "postgresql://u@db.example/pay?sslmode=require&sslcert=/etc/c.pem&sslkey=/etc/k.pem", "postgresql://u@db.example/pay?gsslib=gssapi")) {
      assertThat(load(Map.of("IDEMGATE_PG_URL", taken)).pgUrl()).as(taken).isEqualTo(taken);
    }
  }

  @Test
  @DisplayName("a redis:// URL with an ssl or tls flag is refused naming it: the client reads TLS from the scheme alone, "
      + "and would connect in clear text; a rediss:// URL with one is TLS, and taken")
  void tlsParameterInRedisUrl() {
    for (String url : List.of("redis://:RDSECRET@cache.example:6379?ssl=true", "redis://:RDSECRET@cache.example:6379/0?TLS=1")) {
      assertThat(refusal(Map.of("IDEMGATE_REDIS_URL", url))).as(url).startsWith("redis_url: parameter ")
          .contains("rediss://").doesNotContain("RDSECRET");
    }
    for (String taken : List.of("redis://cache.example:6379?db=2", "redis://cache.example:6379?ssl=false",
        "rediss://cache.example:6379?ssl=true", "rediss://cache.example:6379?ssl_cert_reqs=required")) {
      assertThat(load(Map.of("IDEMGATE_REDIS_URL", taken)).redisUrl()).as(taken).isEqualTo(taken);
    }
  }

  @Test
  @DisplayName("a well-formed pg_url is still taken: user, escaped password, IPv6 host, no port, parameters")
  void goodPgUrls() {
    for (String url : List.of("postgresql://postgres@127.0.0.1:5432/postgres", "postgres://u:p%40ss%2Fw@db.example/idem",
        "postgresql://u:pw@[::1]:5432/db?sslmode=disable", "postgresql://u@127.0.0.1/db?application_name=x")) {
      assertThat(load(Map.of("IDEMGATE_PG_URL", url)).pgUrl()).isEqualTo(url);
    }
  }

  @Test
  @DisplayName("a malformed redis_url is refused naming redis_url and what is wrong, its password never in the line")
  void badRedisUrlNeverEchoesThePassword() {
    Map<String, String> expected = Map.of(
        "redis://:RD%zzSECRET@127.0.0.1:6379", "redis_url: the user name or password holds a % that is not followed",
        "redis://user:RDSECRET@127.0.0.1:99999", "redis_url: the port must be a number 1-65535",
        "redis://127.0.0.1:6379/abc", "redis_url: the path must be a database number",
        "redis://127.0.0.1:6379/-1", "redis_url: the path must be a database number",
        "redis://127.0.0.1:6379/1.5", "redis_url: the path must be a database number",
        "redis://:RD SECRET@127.0.0.1:6379", "redis_url: the user name or password holds a space",
        "redis://:12/RDSECRET@127.0.0.1:6379", "redis_url: the path must be a database number",
        "http://:RDSECRET@127.0.0.1:6379", "redis_url: must start with redis:// or rediss://");
    expected.forEach((url, message) -> {
      String line = refusal(Map.of("IDEMGATE_REDIS_URL", url));
      assertThat(line).as(url).startsWith(message).doesNotContain("SECRET").doesNotContain("\n");
    });
    assertThat(refusal(Map.of("IDEMGATE_REDIS_MODE", "cluster", "IDEMGATE_REDIS_URL",
        "redis://a:6379,redis://:RDSECRET@b:99999")))
        .startsWith("redis_url: URL 2 of 2: the port must be a number 1-65535").doesNotContain("SECRET");
    assertThat(load(Map.of("IDEMGATE_REDIS_URL", "rediss://user:p%25w@cache.example:6380/3")).redisUrl())
        .isEqualTo("rediss://user:p%25w@cache.example:6380/3");
  }

  @Test
  @DisplayName("a comma in a Redis password is part of it: redis_url splits only where a new redis:// or rediss:// URL"
      + " begins, and the password is masked whole")
  void redisPasswordWithAComma() {
    GatewayConfig one = load(Map.of("IDEMGATE_REDIS_URL", "redis://:RD,SECRET@127.0.0.1:6379"));
    assertThat(one.redisUrl()).isEqualTo("redis://:RD,SECRET@127.0.0.1:6379");
    assertThat(one.redisUrls()).containsExactly("redis://:RD,SECRET@127.0.0.1:6379");
    assertThat(one.toString()).contains("redis_url=redis://:***@127.0.0.1:6379").doesNotContain("SECRET");

    GatewayConfig sentinels = load(Map.of("IDEMGATE_REDIS_MODE", "sentinel", "IDEMGATE_REDIS_URL",
        "redis://:RD,SECRET1@a:26379, redis://u:RD,SECRET2@b:26379"));
    assertThat(sentinels.redisUrls()).containsExactly("redis://:RD,SECRET1@a:26379", "redis://u:RD,SECRET2@b:26379");
    assertThat(sentinels.toString()).contains("redis://:***@a:26379, redis://u:***@b:26379").doesNotContain("SECRET");

    assertThat(refusal(Map.of("IDEMGATE_REDIS_MODE", "sentinel", "IDEMGATE_REDIS_URL",
        "redis://:RD,SECRET@a:26379,redis://:RD,SECRET@b:99999")))
        .startsWith("redis_url: URL 2 of 2: the port must be a number 1-65535").doesNotContain("SECRET");
  }

  @Test
  @DisplayName("a sentinel or cluster list mixing redis:// and rediss:// URLs is refused, with or without"
      + " redis_tls_ca_file: part of the set would be reached without TLS")
  void mixedTlsListRefused() {
    String ca = SelfSignedCertificate.create("localhost").certificatePath();
    String expected = "redis_url: mixes redis:// and rediss:// URLs; a sentinel set or cluster speaks TLS on every"
        + " node or on none: use rediss:// for all (TLS) or redis:// for all";
    for (String mode : List.of("sentinel", "cluster")) {
      assertThat(refusal(Map.of("IDEMGATE_REDIS_MODE", mode, "IDEMGATE_REDIS_URL",
          "rediss://:RDSECRET@a:26379,redis://:RDSECRET@b:26379", "IDEMGATE_REDIS_TLS_CA_FILE", ca)))
          .as(mode).isEqualTo(expected);
      assertThat(refusal(Map.of("IDEMGATE_REDIS_MODE", mode, "IDEMGATE_REDIS_URL",
          "redis://a:26379,rediss://b:26379"))).as(mode + ", no CA file").isEqualTo(expected);
      assertThat(load(Map.of("IDEMGATE_REDIS_MODE", mode, "IDEMGATE_REDIS_URL", "rediss://a:26379,rediss://b:26379",
          "IDEMGATE_REDIS_TLS_CA_FILE", ca)).redisTlsCaFile()).contains(ca);
    }
  }

  @Test
  @DisplayName("redis_mode cluster with a database other than 0 is refused: a Redis Cluster has database 0 only")
  void clusterDatabaseZeroOnly() {
    assertThat(refusal(Map.of("IDEMGATE_REDIS_MODE", "cluster", "IDEMGATE_REDIS_URL", "redis://a:6379/0,redis://:RDSECRET@b:6379/3")))
        .isEqualTo("redis_url: URL 2 of 2: a Redis Cluster has database 0 only; leave the path out or give /0");
    assertThat(load(Map.of("IDEMGATE_REDIS_MODE", "cluster", "IDEMGATE_REDIS_URL", "redis://a:6379/0,redis://b:6379/,redis://c"))
        .redisMode()).isEqualTo("cluster");
    assertThat(load(Map.of("IDEMGATE_REDIS_URL", "redis://a:6379/3")).redisUrl()).isEqualTo("redis://a:6379/3");
  }

  @Test
  @DisplayName("redis_mode standalone with several URLs is refused, pointing at sentinel or cluster")
  void standaloneTakesOneUrl() {
    assertThat(refusal(Map.of("IDEMGATE_REDIS_URL", "redis://a:6379,redis://b:6379")))
        .isEqualTo("redis_url: standalone mode takes one URL, got 2; for several, set redis_mode to sentinel "
            + "(the sentinels' URLs) or cluster (seed nodes)");
    assertThat(load(Map.of("IDEMGATE_REDIS_MODE", "sentinel", "IDEMGATE_REDIS_URL",
        "redis://a:26379,redis://b:26379")).redisUrl()).isEqualTo("redis://a:26379,redis://b:26379");
  }

  @Test
  @DisplayName("sentinel mode with a blank redis_master_name is refused: the sentinels would be asked for no master")
  void sentinelNeedsAMasterName() {
    assertThat(refusal(Map.of("IDEMGATE_REDIS_MODE", "sentinel", "IDEMGATE_REDIS_URL", "redis://a:26379,redis://b:26379",
        "IDEMGATE_REDIS_MASTER_NAME", " ")))
        .isEqualTo("redis_master_name: must be set in sentinel mode (the master set's name, e.g. mymaster)");
    assertThat(load(Map.of("IDEMGATE_REDIS_MASTER_NAME", "")).redisMasterName()).as("unused outside sentinel mode").isEmpty();
  }

  @Test
  @DisplayName("http_port equal to management_port is refused; so is port 0 for either")
  void ports() {
    assertThat(refusal(Map.of("IDEMGATE_HTTP_PORT", "9090")))
        .isEqualTo("http_port and management_port: must differ, both are 9090");
    assertThat(refusal(Map.of("IDEMGATE_HTTP_PORT", "0"))).isEqualTo("http_port: must be a port number 1-65535, got 0");
    assertThat(refusal(Map.of("IDEMGATE_MANAGEMENT_PORT", "0")))
        .isEqualTo("management_port: must be a port number 1-65535, got 0");
    assertThat(refusal(Map.of("IDEMGATE_MANAGEMENT_PORT", "65536")))
        .isEqualTo("management_port: must be a port number 1-65535, got 65536");
  }

  @Test
  @DisplayName("every duration has an upper bound, refused at load naming the setting")
  void durationMaxima() {
    Map<String, String> tooLong = Map.ofEntries(
        Map.entry("IDEMGATE_STORE_TIMEOUT", "store_timeout: must be at most 1m, got 25d"),
        Map.entry("IDEMGATE_REDIS_TIMEOUT", "redis_timeout: must be at most 1m, got 25d"),
        Map.entry("IDEMGATE_PROVIDER_TIMEOUT", "provider_timeout: must be at most 2m, got 25d"),
        Map.entry("IDEMGATE_LEASE", "lease: must be at most 1h, got 25d"),
        Map.entry("IDEMGATE_RECOVERY_INTERVAL", "recovery_interval: must be at most 1h, got 25d"),
        Map.entry("IDEMGATE_DRAIN_TIMEOUT", "drain_timeout: must be at most 10m, got 25d"),
        Map.entry("IDEMGATE_REQUEST_BODY_TIMEOUT", "request_body_timeout: must be at most 10m, got 25d"),
        Map.entry("IDEMGATE_HTTP_IDLE_TIMEOUT", "http_idle_timeout: must be at most 1h, got 25d"));
    tooLong.forEach((variable, message) -> assertThat(refusal(Map.of(variable, "25d"))).as(variable).isEqualTo(message));
    // 99999999d used to overflow into a long overflow or a negative timeout blamed on the ports.
    tooLong.forEach((variable, message) -> assertThat(refusal(Map.of(variable, "99999999d"))).as(variable)
        .isEqualTo(message.replace("25d", "99999999d")));
    assertThat(refusal(Map.of("IDEMGATE_RECOVERY_BACKOFF", "5s,99999999d")))
        .isEqualTo("recovery_backoff: every step must be at most 1d, got 99999999d");
    assertThat(load(Map.of("IDEMGATE_STORE_TIMEOUT", "1m", "IDEMGATE_LEASE", "1h", "IDEMGATE_PROVIDER_TIMEOUT", "2m",
        "IDEMGATE_RECOVERY_BACKOFF", "5s,1d", "IDEMGATE_DRAIN_TIMEOUT", "0s")).storeTimeout()).isEqualTo(Duration.ofMinutes(1));
  }

  @Test
  @DisplayName("the longest lease and provider_timeout still fit under provider_key_retention's default, so its check blames it only when it is the one changed")
  void leaseAndProviderTimeoutBoundedBeforeRetention() {
    assertThat(refusal(Map.of("IDEMGATE_LEASE", "2h"))).startsWith("lease:");
    assertThat(refusal(Map.of("IDEMGATE_PROVIDER_TIMEOUT", "1h"))).startsWith("provider_timeout:");
    assertThat(load(Map.of("IDEMGATE_LEASE", "1h", "IDEMGATE_PROVIDER_TIMEOUT", "2m")).providerKeyRetention())
        .isEqualTo(Duration.ofHours(24));
  }

  @Test
  @DisplayName("recovery_backoff with an empty step is refused, not read as the steps around it")
  void emptyBackoffStep() {
    assertThat(refusal(Map.of("IDEMGATE_RECOVERY_BACKOFF", "5s,,1h")))
        .isEqualTo("recovery_backoff: a step is empty (two commas in a row, or one at an end), got '5s,,1h'; e.g. 5s,30s,2m");
    assertThat(refusal(Map.of("IDEMGATE_RECOVERY_BACKOFF", "5s,1h,"))).startsWith("recovery_backoff: a step is empty");
    assertThat(refusal(Map.of("IDEMGATE_RECOVERY_BACKOFF", " "))).startsWith("recovery_backoff: give at least one duration");
    assertThat(load(Map.of("IDEMGATE_RECOVERY_BACKOFF", "5s, 30s")).recoveryBackoff())
        .containsExactly(Duration.ofSeconds(5), Duration.ofSeconds(30));
  }

  @Test
  @DisplayName("a setting given twice in the file is refused, naming the setting, the file and the line")
  void duplicateSetting(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("idemgate.yaml");
    Files.writeString(file, "http_port: 8181\nkey_ttl: 24h\nlease: 10s\nkey_ttl: 1s\n");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.of(file), Map.of()))
        .isInstanceOf(ConfigException.class)
        .hasMessage(file + ": key_ttl is given twice (line 4); keep one");
  }

  @Test
  @DisplayName("a configuration file that cannot be read says why: no such file, is a directory")
  void unreadableFile(@TempDir Path dir) {
    Path missing = dir.resolve("nonexistent.yaml");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.of(missing), Map.of()))
        .hasMessage("cannot read configuration file " + missing + ": no such file");
    assertThatThrownBy(() -> ConfigLoader.load(Optional.of(dir), Map.of()))
        .hasMessage("cannot read configuration file " + dir + ": is a directory");
  }

  @Test
  @DisplayName("tls_cert and tls_key must be readable PEM files of a certificate and a private key")
  void tlsFiles(@TempDir Path dir) throws Exception {
    SelfSignedCertificate pair = SelfSignedCertificate.create("localhost");
    String cert = pair.certificatePath();
    String key = pair.privateKeyPath();
    GatewayConfig ok = load(Map.of("IDEMGATE_TLS_CERT", cert, "IDEMGATE_TLS_KEY", key));
    assertThat(ok.tlsCert()).contains(cert);
    Path missing = dir.resolve("missing.pem");
    assertThat(refusal(Map.of("IDEMGATE_TLS_CERT", missing.toString(), "IDEMGATE_TLS_KEY", key)))
        .isEqualTo("tls_cert: " + missing + ": no such file");
    assertThat(refusal(Map.of("IDEMGATE_TLS_CERT", cert, "IDEMGATE_TLS_KEY", dir.toString())))
        .isEqualTo("tls_key: " + dir + ": is a directory");
    assertThat(refusal(Map.of("IDEMGATE_TLS_CERT", key, "IDEMGATE_TLS_KEY", key)))
        .isEqualTo("tls_cert: " + key + ": not a certificate in PEM (-----BEGIN CERTIFICATE-----) (it holds a private key)");
    assertThat(refusal(Map.of("IDEMGATE_TLS_CERT", cert, "IDEMGATE_TLS_KEY", cert)))
        .isEqualTo("tls_key: " + cert + ": not a private key in PEM (-----BEGIN PRIVATE KEY-----) (it holds a certificate)");
    Path text = Files.writeString(dir.resolve("notes.txt"), "hello\n");
    assertThat(refusal(Map.of("IDEMGATE_TLS_CERT", text.toString(), "IDEMGATE_TLS_KEY", key)))
        .isEqualTo("tls_cert: " + text + ": not a certificate in PEM (-----BEGIN CERTIFICATE-----)");
  }

  @Test
  @DisplayName("redis_tls_ca_file must be a readable PEM certificate, and only with a rediss:// URL")
  void redisCaFile(@TempDir Path dir) throws Exception {
    String ca = SelfSignedCertificate.create("localhost").certificatePath();
    assertThat(load(Map.of("IDEMGATE_REDIS_URL", "rediss://127.0.0.1:6380", "IDEMGATE_REDIS_TLS_CA_FILE", ca))
        .redisTlsCaFile()).contains(ca);
    Path missing = dir.resolve("ca.pem");
    assertThat(refusal(Map.of("IDEMGATE_REDIS_URL", "rediss://127.0.0.1:6380", "IDEMGATE_REDIS_TLS_CA_FILE", missing.toString())))
        .isEqualTo("redis_tls_ca_file: " + missing + ": no such file");
    assertThat(refusal(Map.of("IDEMGATE_REDIS_TLS_CA_FILE", ca)))
        .isEqualTo("redis_tls_ca_file: only for rediss:// URLs (TLS); redis_url does not use TLS");
  }

  @Test
  @DisplayName("redis_at_start is required (the default) or optional")
  void redisAtStart() {
    assertThat(load(Map.of()).redisOptionalAtStart()).isFalse();
    assertThat(load(Map.of("IDEMGATE_REDIS_AT_START", "Optional")).redisOptionalAtStart()).isTrue();
    assertThat(refusal(Map.of("IDEMGATE_REDIS_AT_START", "lazy")))
        .isEqualTo("redis_at_start: must be one of required, optional, got 'lazy'");
  }

  @Test
  @DisplayName("a set admin_token shorter than 16 visible ASCII characters is refused, never echoed; unset still closes /admin/")
  void shortAdminToken() {
    for (String token : List.of("x", "fifteen-chars!!", "sixteen chars ok")) {
      assertThat(refusal(Map.of("IDEMGATE_ADMIN_TOKEN", token))).isEqualTo("admin_token: must be at least 16 visible ASCII "
          + "characters (no spaces), e.g. openssl rand -hex 32; or unset, which closes the admin endpoints");
    }
    assertThat(load(Map.of("IDEMGATE_ADMIN_TOKEN", "sixteen-chars-ok")).adminToken()).contains("sixteen-chars-ok");
    assertThat(load(Map.of("IDEMGATE_ADMIN_TOKEN", "")).adminToken()).isEmpty();
  }

  @Test
  @DisplayName("with api_keys only, a per-merchant setting naming a merchant without a key is refused, naming the merchant")
  void keylessMerchantSetting() {
    assertThat(refusal(Map.of("IDEMGATE_API_KEYS", "acme=sk_test_acme_key", "IDEMGATE_MERCHANT_RATE_LIMIT", "acme=5,acmee=50")))
        .isEqualTo("merchant_rate_limit: acmee has no API key in api_keys (a misspelt merchant id?), so this setting "
            + "would never apply; merchants with a key: acme");
    assertThat(refusal(Map.of("IDEMGATE_MERCHANT_KEY_TTL", "shop=1h")))
        .isEqualTo("merchant_key_ttl: shop has no API key in api_keys (a misspelt merchant id?), so this setting "
            + "would never apply; merchants with a key: demo")
        .doesNotContain("sk_test_demo");
    assertThat(load(Map.of("IDEMGATE_MERCHANT_KEY_TTL", "demo=1h")).keyTtlFor("demo")).isEqualTo(Duration.ofHours(1));
  }

  @Test
  @DisplayName("api_keys set empty with no api_keys_file is refused: no request could be authenticated, every payment would get 401")
  void noApiKeyAtAll() {
    // Before, the gateway started and reported ready, and answered every payment 401: what a
    // production deployment gets that clears api_keys and misspells IDEMGATE_API_KEYS_FILE.
    for (String empty : List.of("", " ", ",")) {
      assertThat(refusal(Map.of("IDEMGATE_API_KEYS", empty))).as("'" + empty + "'")
          .startsWith("api_keys and api_keys_file: both are empty");
    }
    assertThat(load(Map.of("IDEMGATE_API_KEYS", "", "IDEMGATE_API_KEYS_FILE", "/etc/idemgate/api-keys/api-keys"))
        .apiKeysFile()).isPresent();
  }

  @Test
  @DisplayName("with tracing otlp, an otlp_endpoint that is no usable http(s) URL is refused at load naming it, its secrets never echoed")
  void badOtlpEndpoint() {
    // Before, only the scheme was checked: these failed start-up with exit status 1, a stack trace
    // and the whole URL in the line, or started and lost every span (no host, no such port, a query
    // that /v1/traces was appended to).
    Map<String, String> expected = Map.of(
        "http://coll ector:4318/SECRET", "otlp_endpoint: not a URL",
        "http://:4318", "otlp_endpoint: needs a valid host name",
        "http://otel_collector:4318", "otlp_endpoint: needs a valid host name",
        "http://collector:99999", "otlp_endpoint: the port must be 1-65535",
        "http://collector:0", "otlp_endpoint: the port must be 1-65535",
        "http://user:SECRET@collector:4318", "otlp_endpoint: must not carry credentials",
        "http://collector:4318?token=SECRET", "otlp_endpoint: must not have a query or a fragment");
    expected.forEach((url, message) -> {
      String line = refusal(Map.of("IDEMGATE_TRACING", "otlp", "IDEMGATE_OTLP_ENDPOINT", url));
      assertThat(line).as(url).startsWith(message).doesNotContain("SECRET").doesNotContain("\n");
    });
    for (String url : List.of("http://collector:4318", "https://otel.example/custom/traces", "http://[::1]:4318/")) {
      assertThat(load(Map.of("IDEMGATE_TRACING", "otlp", "IDEMGATE_OTLP_ENDPOINT", url)).otlpEndpoint()).isEqualTo(url);
    }
    // Unused with tracing off, as provider_url is with the simulator.
    assertThat(load(Map.of("IDEMGATE_OTLP_ENDPOINT", "http://collector:99999")).tracing()).isEqualTo("off");
  }

  @Test
  @DisplayName("a provider_url with port 0 is refused, as pg_url's and redis_url's are: every charge would fail to connect")
  void providerUrlPortZero() {
    assertThat(refusal(Map.of("IDEMGATE_PROVIDER", "http", "IDEMGATE_PROVIDER_URL", "http://acquirer.example:0/v1")))
        .isEqualTo("provider_url: the port must be 1-65535, got 0");
  }

  @Test
  @DisplayName("simulator_latency_ms above 120000 (2 minutes, the longest provider_timeout) is refused naming it: a simulated "
      + "call that never ends left every payment pending, and latency + simulator_slow_ms overflowed, answering tok_slow at "
      + "once; simulator_slow_ms above 3600000 likewise")
  void simulatorDelaysAreBounded() {
    Map<String, String> expected = Map.of(
        "IDEMGATE_SIMULATOR_LATENCY_MS", "simulator_latency_ms: must be between 0 and 120000",
        "IDEMGATE_SIMULATOR_SLOW_MS", "simulator_slow_ms: must be between 0 and 3600000");
    expected.forEach((variable, message) -> {
      for (String huge : List.of("9223372036854775807", "3600001")) {
        assertThat(refusal(Map.of(variable, huge))).as(variable + "=" + huge).startsWith(message).doesNotContain("\n");
      }
    });
    assertThat(refusal(Map.of("IDEMGATE_SIMULATOR_LATENCY_MS", "120001"))).startsWith("simulator_latency_ms: must be between");
    GatewayConfig longest = load(Map.of("IDEMGATE_SIMULATOR_LATENCY_MS", "120000", "IDEMGATE_SIMULATOR_SLOW_MS", "3600000"));
    assertThat(longest.simulatorLatencyMs()).isEqualTo(120_000);
    assertThat(longest.simulatorSlowMs()).isEqualTo(3_600_000);
  }

  @Test
  @DisplayName("pg_url parameters nothing uses (connect_timeout, target_session_attrs, sslcert …, and options and "
      + "search_path, which the pools do not take) are not refused (such URLs start today) but named in one warning at "
      + "start saying they are ignored, never with the URL or its password; the ones used (the address and login, "
      + "database, sslmode, sslrootcert, application_name, fallback_application_name) give none; migrate's loadPgUrl "
      + "warns alike (before: ignored without a word)")
  void unreadPgUrlParametersAreWarnedAbout() throws Exception {
    String url = "postgresql://u:PGSECRET@db.example:5432/pay?connect_timeout=5&application_name=x&Target_Session_Attrs="
        + "read-write&options=-c%20statement_timeout%3D9000&sslmode=require&sslcert=/etc/c.pem&keepalives=1";
    List<String> warnings = new java.util.ArrayList<>();
    assertThat(ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PG_URL", url), warnings::add).pgUrl()).isEqualTo(url);
    assertThat(warnings).hasSize(1);
    assertThat(warnings.get(0)).startsWith("pg_url: parameters connect_timeout, Target_Session_Attrs, options, sslcert, "
        + "keepalives are ignored").doesNotContain("PGSECRET").doesNotContain("db.example")
        .doesNotContain("\n");
    List<String> migrating = new java.util.ArrayList<>();
    ConfigLoader.loadPgUrl(Optional.empty(), Map.of("IDEMGATE_PG_URL", "postgresql://u@db.example/pay?connect_timeout=5"),
        migrating::add);
    assertThat(migrating).containsExactly("pg_url: parameter connect_timeout is ignored (the gateway sets its own connect deadline and session settings; docs/operations.md, \"PostgreSQL\")");
    Path ca = Files.createTempFile("pg-ca", ".pem");
    try {
      Files.writeString(ca, "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n");
      List<String> none = new java.util.ArrayList<>();
      ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_PG_URL", "postgres://u:p@db.example/pay?host=db2.example&port=5433"
          + "&user=v&password=q&dbname=other&hostaddr=10.0.0.1&sslmode=verify-ca&sslrootcert=" + ca + "&application_name=a"
          + "&fallback_application_name=b&database=pay"), none::add);
      assertThat(none).isEmpty();
    } finally {
      Files.delete(ca);
    }
  }
}
