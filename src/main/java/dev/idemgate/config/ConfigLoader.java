package dev.idemgate.config;

import dev.idemgate.anomaly.DuplicatePayloadPolicy;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.redis.client.impl.RedisURI;

/**
 * Builds the {@link GatewayConfig}: the defaults shipped in the jar (a copy of
 * {@code conf/idemgate.yaml}), then an optional YAML file, then environment variables
 * {@code IDEMGATE_<KEY>}, each layer winning over the one before. Unknown keys and bad values
 * fail with one {@link ConfigException} line naming the setting.
 */
public final class ConfigLoader {
  static final int MAX_REPLAY_CACHE_ENTRIES = 1_000_000;
  static final int MAX_API_INSTANCES = 256;
  /** The shortest key TTL: a client's retry a moment later would be a new payment, charged again. */
  private static final Duration MIN_KEY_TTL = Duration.ofSeconds(1);
  static final int MAX_PROVIDER_CONNECTIONS = 4096;
  static final Duration MAX_PROVIDER_KEY_RETENTION = Duration.ofDays(400);
  static final long MAX_RATE_LIMIT = 1_000_000;
  /**
   * The simulator's added latency, at most the longest provider_timeout: past that every charge and
   * inquiry ends UNKNOWN whatever the timeout, every payment pending for good, and a huge one was a
   * timer that never fired (one held per call) and overflowed with simulator_slow_ms.
   */
  public static final int MAX_SIMULATOR_LATENCY_MS = 120_000;
  /** The delay of {@code tok_slow}: an hour is longer than any lease, so a charge slow past anything. */
  static final int MAX_SIMULATOR_SLOW_MS = 3_600_000;
  static final int MIN_ADMIN_TOKEN_CHARS = 16;
  private static final Pattern ADMIN_TOKEN = Pattern.compile("[\\x21-\\x7E]{" + MIN_ADMIN_TOKEN_CHARS + ",}");
  private static final String ENV_PREFIX = "IDEMGATE_";
  /** A {@code %} not followed by two hex digits, which the URL parsers of both clients refuse. */
  private static final Pattern BAD_ESCAPE = Pattern.compile("%(?![0-9A-Fa-f]{2})");
  private static final Logger log = LoggerFactory.getLogger(ConfigLoader.class);

  private ConfigLoader() {}

  /**
   * Loads defaults, then {@code file} if given, then the overrides (normally {@code System.getenv()});
   * a variable that names no setting is warned about in the log.
   */
  public static GatewayConfig load(Optional<Path> file, Map<String, String> environment) {
    return load(file, environment, log::warn);
  }

  /**
   * As {@link #load(Optional, Map)}, the warning handed to {@code warnings} instead: a command whose
   * standard output is its product (a report) says it on standard error, where the log's JSON line
   * would have gone into the report.
   */
  public static GatewayConfig load(Optional<Path> file, Map<String, String> environment, Consumer<String> warnings) {
    return build(values(file, environment, warnings), warnings);
  }

  /**
   * The one setting {@code migrate} uses, {@code pg_url}, checked as {@link #load} checks it. The
   * file must still be readable YAML naming only known settings (a misspelt key is caught wherever
   * it is read), but the values of the other settings are neither needed nor checked: Kubernetes'
   * init container runs {@code migrate} with the ConfigMap and the connection string alone, while
   * what the ConfigMap's other settings need (API keys, the acquirer's URL, TLS files) is given to
   * the gateway's container only. Checking them here stopped every pod in Init:Error.
   */
  public static String loadPgUrl(Optional<Path> file, Map<String, String> environment) {
    return loadPgUrl(file, environment, log::warn);
  }

  /**
   * {@link #loadPgUrl(Optional, Map)} with the warnings (variables that name no setting) going to
   * {@code warnings}: {@code reconcile} and {@code settlement-demo} use pg_url alone too, and say
   * their warnings on standard error.
   */
  public static String loadPgUrl(Optional<Path> file, Map<String, String> environment, Consumer<String> warnings) {
    return pgUrl(values(file, environment, warnings), warnings);
  }

  /**
   * What {@code reconcile} reads of the gateway's settings: {@code pg_url}, and how long after its
   * claim a charge may still land ({@link GatewayConfig#chargeInFlight}), from {@code lease} and
   * {@code provider_timeout} checked as {@link #load} checks them. The other settings are not
   * checked, as for {@link #loadPgUrl}.
   */
  public record ForReconciliation(String pgUrl, Duration chargeInFlight) {}

  public static ForReconciliation loadForReconciliation(Optional<Path> file, Map<String, String> environment,
      Consumer<String> warnings) {
    Map<String, String> v = values(file, environment, warnings);
    String pgUrl = pgUrl(v, warnings);
    return new ForReconciliation(pgUrl, GatewayConfig.chargeInFlight(lease(v), providerTimeout(v)));
  }

  /**
   * What the standalone acquirer ({@code acquirer}) reads of the gateway's settings: the simulator's
   * latencies and the log level, checked as {@link #load} checks them. The other settings are not
   * checked, as for {@link #loadPgUrl}: the acquirer stands in for another service, and may run
   * beside the gateway's ConfigMap without what the gateway's settings need (API keys, the acquirer's
   * own URL, a database). It refused to start on any of them.
   */
  public record ForAcquirer(long simulatorLatencyMs, long simulatorSlowMs, String logLevel) {}

  public static ForAcquirer loadForAcquirer(Optional<Path> file, Map<String, String> environment) {
    Map<String, String> v = values(file, environment, log::warn);
    return new ForAcquirer(simulatorLatencyMs(v), simulatorSlowMs(v), logLevel(v));
  }

  private static int simulatorLatencyMs(Map<String, String> v) {
    return upTo(v, "simulator_latency_ms", MAX_SIMULATOR_LATENCY_MS, "0 and " + MAX_SIMULATOR_LATENCY_MS
        + " (2 minutes, the longest provider_timeout)");
  }

  private static int simulatorSlowMs(Map<String, String> v) {
    return upTo(v, "simulator_slow_ms", MAX_SIMULATOR_SLOW_MS, "0 and " + MAX_SIMULATOR_SLOW_MS + " (1 hour)");
  }

  private static Duration lease(Map<String, String> v) {
    return between(v, "lease", "2s", "1h");
  }

  private static Duration providerTimeout(Map<String, String> v) {
    return between(v, "provider_timeout", "100ms", "2m");
  }

  /** Defaults, then {@code file}, then the environment: every setting's text, none of them checked yet. */
  private static Map<String, String> values(Optional<Path> file, Map<String, String> environment, Consumer<String> warnings) {
    Map<String, String> values = readYaml(defaults(), "built-in defaults");
    file.ifPresent(path -> mergeKnown(values, readFile(path), path.toString()));
    for (String key : values.keySet()) {
      String env = environment.get(ENV_PREFIX + key.toUpperCase(Locale.ROOT));
      if (env != null) {
        values.put(key, env);
      }
    }
    List<String> ignored = ignoredVariables(environment, values.keySet());
    if (!ignored.isEmpty()) {
      warnings.accept("environment variables that name no setting, ignored: " + String.join(", ", ignored));
    }
    return values;
  }

  /**
   * The {@code IDEMGATE_*} variables that set nothing: a misspelt setting
   * ({@code IDEMGATE_PROVIDER_TIMEOUTS}) would otherwise be dropped without a word. Not refused, as
   * an unknown key in a file is: the variables of a process are not all ours to name. Left out:
   * {@code IDEMGATE_CONFIG}, reconciliation's own {@code IDEMGATE_RECONCILIATION_*}, and the
   * service links Kubernetes sets for a Service named idemgate ({@code IDEMGATE_SERVICE_*},
   * {@code IDEMGATE_PORT*}).
   */
  static List<String> ignoredVariables(Map<String, String> environment, Set<String> keys) {
    return environment.keySet().stream()
        .filter(name -> name.startsWith(ENV_PREFIX))
        .filter(name -> !keys.contains(name.substring(ENV_PREFIX.length()).toLowerCase(Locale.ROOT)))
        .filter(name -> !name.equals("IDEMGATE_CONFIG") && !name.startsWith("IDEMGATE_RECONCILIATION_")
            && !name.startsWith("IDEMGATE_SERVICE_") && !name.equals("IDEMGATE_PORT") && !name.startsWith("IDEMGATE_PORT_"))
        .sorted()
        .toList();
  }

  /** The file a command's {@code --config} names ({@code named}), else {@link #defaultFile}. */
  public static Optional<Path> namedOrDefaultFile(Path named, Map<String, String> environment) {
    return named == null ? defaultFile(environment) : Optional.of(named);
  }

  /** The file to read when none is named: {@code IDEMGATE_CONFIG}, else {@code conf/idemgate.yaml} if present. */
  public static Optional<Path> defaultFile(Map<String, String> environment) {
    String named = environment.get("IDEMGATE_CONFIG");
    if (named != null && !named.isBlank()) {
      return Optional.of(Path.of(named));
    }
    Path local = Path.of("conf", "idemgate.yaml");
    return Files.isRegularFile(local) ? Optional.of(local) : Optional.empty();
  }

  private static InputStream defaults() {
    InputStream in = ConfigLoader.class.getResourceAsStream("/idemgate.yaml");
    if (in == null) {
      throw new ConfigException("the built-in idemgate.yaml is missing from the jar; rebuild with mvn package");
    }
    return in;
  }

  private static Map<String, String> readFile(Path path) {
    // Checked first: a directory opens, and only its read fails, as "not valid YAML".
    String problem = Unreadable.check(path);
    if (problem != null) {
      throw new ConfigException("cannot read configuration file " + path + ": " + problem);
    }
    try {
      return readYaml(Files.newInputStream(path), path.toString());
    } catch (IOException e) {
      throw new ConfigException("cannot read configuration file " + path + ": " + Unreadable.reason(path, e));
    }
  }

  private static Map<String, String> readYaml(InputStream in, String source) {
    Map<String, String> values = new LinkedHashMap<>();
    StrictYaml.readText(in, source).forEach((k, v) -> values.put(k, v == null ? "" : String.valueOf(v)));
    return values;
  }

  private static void mergeKnown(Map<String, String> values, Map<String, String> overrides, String source) {
    overrides.forEach((key, value) -> {
      if (!values.containsKey(key)) {
        throw new ConfigException(source + ": unknown setting '" + key + "'");
      }
      values.put(key, value);
    });
  }

  private static GatewayConfig build(Map<String, String> v, Consumer<String> warnings) {
    Duration keyTtl = duration(v, "key_ttl");
    if (keyTtl.compareTo(GatewayConfig.MAX_KEY_TTL) > 0 || keyTtl.compareTo(MIN_KEY_TTL) < 0) {
      throw new ConfigException("key_ttl: must be between 1s and 30d, got " + v.get("key_ttl"));
    }
    String provider = v.get("provider").trim();
    if (!provider.equals("simulator") && !provider.equals("http")) {
      throw new ConfigException("provider: must be simulator or http, got '" + provider + "'");
    }
    Optional<String> providerUrl = providerUrl(v, provider);
    Map<String, String> apiKeys = ApiKeys.parse(v.get("api_keys"));
    Optional<Path> apiKeysFile = optionalPath(v, "api_keys_file");
    if (apiKeysFile.isPresent() && !apiKeys.isEmpty()) {
      // Refused rather than merged: the shipped default api_keys (demo=sk_test_demo) would
      // otherwise stay valid beside the production keys.
      throw new ConfigException("api_keys and api_keys_file: set one, not both; with api_keys_file, set api_keys "
          + "to \"\" (IDEMGATE_API_KEYS=\"\") so that no plain-text key stays valid");
    }
    if (apiKeysFile.isEmpty() && apiKeys.isEmpty()) {
      // Fixed for the life of the process: a gateway that can authenticate no one answers every
      // payment 401 while it reports ready (a production setup that clears api_keys and misspells
      // IDEMGATE_API_KEYS_FILE). A file may hold no key (all revoked); it is re-read.
      throw new ConfigException("api_keys and api_keys_file: both are empty, so no request could be authenticated; set "
          + "api_keys_file (IDEMGATE_API_KEYS_FILE, the hashed keys) or, for development, api_keys");
    }
    Duration apiKeysReload = duration(v, "api_keys_reload_interval");
    if (apiKeysReload.toMillis() < 100 || apiKeysReload.compareTo(Duration.ofHours(1)) > 0) {
      throw new ConfigException("api_keys_reload_interval: must be between 100ms and 1h, got " + v.get("api_keys_reload_interval"));
    }
    Optional<String> tlsCert = optional(v, "tls_cert");
    Optional<String> tlsKey = optional(v, "tls_key");
    if (tlsCert.isPresent() != tlsKey.isPresent()) {
      throw new ConfigException("tls_cert and tls_key: set both or neither");
    }
    tlsCert.ifPresent(path -> pem("tls_cert", path, "a certificate", "CERTIFICATE"));
    tlsKey.ifPresent(path -> pem("tls_key", path, "a private key", "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"));
    Optional<String> redisCa = optionalPath(v, "redis_tls_ca_file").map(Path::toString);
    redisCa.ifPresent(path -> pem("redis_tls_ca_file", path, "a certificate", "CERTIFICATE"));
    if (redisCa.isPresent() && !v.get("redis_url").contains("rediss://")) {
      throw new ConfigException("redis_tls_ca_file: only for rediss:// URLs (TLS); redis_url does not use TLS");
    }
    int providerConnections = upTo(v, "provider_max_connections", MAX_PROVIDER_CONNECTIONS, "1 and " + MAX_PROVIDER_CONNECTIONS);
    if (providerConnections < 1) {
      throw new ConfigException("provider_max_connections: must be between 1 and " + MAX_PROVIDER_CONNECTIONS
          + ", got " + v.get("provider_max_connections"));
    }
    Duration providerTimeout = providerTimeout(v);
    // A charge is sent only while lease - 1 s is left (PaymentService): a shorter lease sends none.
    // At most an hour: a claim whose instance died waits this long for recovery.
    Duration lease = lease(v);
    Duration keyRetention = duration(v, "provider_key_retention");
    if (keyRetention.compareTo(MAX_PROVIDER_KEY_RETENTION) > 0) {
      // Its lower bound is checked once the whole configuration is read (minProviderKeyRetention).
      throw new ConfigException("provider_key_retention: must be at most 400d, got " + v.get("provider_key_retention"));
    }
    Duration bodyTimeout = between(v, "request_body_timeout", "100ms", "10m");
    Duration idleTimeout = between(v, "http_idle_timeout", "1s", "1h");
    if (idleTimeout.compareTo(bodyTimeout) <= 0) {
      // Else a body that stops half way loses its connection without the 408 that says why.
      throw new ConfigException("http_idle_timeout: must be longer than request_body_timeout (" + v.get("request_body_timeout")
          + "), got " + v.get("http_idle_timeout"));
    }
    int httpPort = port(v, "http_port");
    int managementPort = port(v, "management_port");
    if (httpPort == managementPort) {
      // Both servers would bind it, and each request would land on either at random.
      throw new ConfigException("http_port and management_port: must differ, both are " + httpPort);
    }
    String redisMode = oneOf(v, "redis_mode", "standalone", "sentinel", "cluster");
    Map<String, Duration> merchantKeyTtls = merchantTtls(v.get("merchant_key_ttl"));
    Map<String, Long> merchantRateLimits = merchantRateLimits(v.get("merchant_rate_limit"));
    String tracing = oneOf(v, "tracing", "off", "otlp");
    if (apiKeysFile.isEmpty()) {
      // api_keys is fixed for the life of the process: a merchant without a key there (a typo, most
      // likely) can never send a request, and its setting would never apply. With api_keys_file the
      // keys change at run time, and Idemgate warns at start instead (MerchantKeys#keyless).
      keyless("merchant_key_ttl", merchantKeyTtls.keySet(), apiKeys);
      keyless("merchant_rate_limit", merchantRateLimits.keySet(), apiKeys);
    }
    GatewayConfig config = new GatewayConfig(
        httpPort,
        managementPort,
        pgUrl(v, warnings),
        positive(v, "pg_pool_size"),
        // PostgreSQL's statement_timeout takes at most about 24.8 days; a payment waits on this.
        between(v, "store_timeout", "10ms", "1m"),
        redisUrls(v, redisMode),
        redisMode,
        redisMasterName(v, redisMode),
        between(v, "redis_timeout", "1ms", "1m"),
        redisCa,
        oneOf(v, "redis_at_start", "required", "optional"),
        apiKeys,
        apiKeysFile,
        apiKeysReload,
        adminToken(v),
        keyTtl,
        lease,
        provider,
        providerUrl,
        providerName(v),
        providerTimeout,
        providerConnections,
        keyRetention,
        between(v, "recovery_interval", "10ms", "1h"),
        durations(v, "recovery_backoff", "10ms", "1d"),
        positive(v, "recovery_batch"),
        merchantKeyTtls,
        positive(v, "retention_batch"),
        upTo(v, "replay_cache_entries", MAX_REPLAY_CACHE_ENTRIES,
            "0 and " + MAX_REPLAY_CACHE_ENTRIES + " (about 1 KiB of heap each)"),
        simulatorLatencyMs(v),
        simulatorSlowMs(v),
        tlsCert,
        tlsKey,
        upTo(v, "api_instances", MAX_API_INSTANCES,
            "0 (one per core) and " + MAX_API_INSTANCES + " (each has its own PostgreSQL pool and Redis connections)"),
        bool(v, "metrics_enabled"),
        atMost(v, "drain_timeout", "10m"),
        bodyTimeout,
        idleTimeout,
        rateLimit("rate_limit", v.get("rate_limit")),
        merchantRateLimits,
        logLevel(v),
        tracing,
        otlpEndpoint(v, tracing),
        duplicatePayloadPolicy(v),
        duplicateWindow(v),
        duplicateFields(v));
    if (config.providerKeyRetention().compareTo(config.minProviderKeyRetention()) <= 0) {
      // Recovery would hear the acquirer's "never seen" only once it no longer counts: no payment
      // the acquirer missed would ever be released but by an operator, whatever a 502's Retry-After
      // promised. (Before session 30 the bound was lease + 2 x provider_timeout, which leaves out
      // the takeover, the recovery pass and the inquiry.)
      throw new ConfigException("provider_key_retention: must be longer than " + seconds(config.minProviderKeyRetention())
          + " (recovery frees the key of a payment the acquirer never saw up to " + seconds(config.heldKeyFreedWithin())
          + " after its claim, and hears the acquirer's answer up to " + seconds(config.inquiryHold())
          + " later) and at most 400d, got " + v.get("provider_key_retention"));
    }
    return config;
  }

  /** A duration as whole seconds ({@code 70s}), or milliseconds when it has a fraction of a second. */
  private static String seconds(Duration d) {
    return d.toMillis() % 1000 == 0 ? d.toSeconds() + "s" : d.toMillis() + "ms";
  }

  /**
   * A whole number from 0 to {@code max}, else the setting is refused at start with a message
   * naming the range ({@code range}: what its two ends mean).
   */
  private static int upTo(Map<String, String> v, String key, int max, String range) {
    long n = nonNegative(v, key);
    if (n > max) {
      throw new ConfigException(key + ": must be between " + range + ", got " + v.get(key));
    }
    return (int) n;
  }

  private static boolean bool(Map<String, String> v, String key) {
    String s = v.get(key).trim().toLowerCase(Locale.ROOT);
    if (!s.equals("true") && !s.equals("false")) {
      throw new ConfigException(key + ": must be true or false, got '" + v.get(key) + "'");
    }
    return s.equals("true");
  }

  private static String oneOf(Map<String, String> v, String key, String... allowed) {
    String s = v.get(key).trim().toLowerCase(Locale.ROOT);
    if (!java.util.Arrays.asList(allowed).contains(s)) {
      throw new ConfigException(key + ": must be one of " + String.join(", ", allowed) + ", got '" + v.get(key) + "'");
    }
    return s;
  }

  private static String logLevel(Map<String, String> v) {
    String level = v.get("log_level").trim().toUpperCase(Locale.ROOT);
    if (!Set.of("TRACE", "DEBUG", "INFO", "WARN", "ERROR").contains(level)) {
      throw new ConfigException("log_level: must be TRACE, DEBUG, INFO, WARN or ERROR, got '" + v.get("log_level") + "'");
    }
    return level;
  }

  private static DuplicatePayloadPolicy duplicatePayloadPolicy(Map<String, String> v) {
    return DuplicatePayloadPolicy.parse(v.get("duplicate_payload_policy")).orElseThrow(() -> new ConfigException(
        "duplicate_payload_policy: must be flag, reject or off, got '" + v.get("duplicate_payload_policy").trim() + "'"));
  }

  private static Duration duplicateWindow(Map<String, String> v) {
    Duration window = duration(v, "duplicate_window");
    if (window.toSeconds() < 1 || window.compareTo(Duration.ofDays(1)) > 0) {
      throw new ConfigException("duplicate_window: must be between 1s and 1d, got " + v.get("duplicate_window"));
    }
    return window;
  }

  private static List<String> duplicateFields(Map<String, String> v) {
    List<String> fields = new ArrayList<>();
    for (String field : v.get("duplicate_fields").split(",")) {
      String name = field.trim();
      if (!name.isEmpty() && !fields.contains(name)) {
        fields.add(name);
      }
    }
    if (fields.isEmpty() || !DuplicatePayloadPolicy.FINGERPRINT_FIELDS.containsAll(fields)) {
      throw new ConfigException("duplicate_fields: a comma-separated list of " + String.join(", ",
          DuplicatePayloadPolicy.FINGERPRINT_FIELDS) + ", got '" + v.get("duplicate_fields").trim() + "'");
    }
    return List.copyOf(fields);
  }

  private static Optional<Path> optionalPath(Map<String, String> v, String key) {
    try {
      return optional(v, key).map(Path::of);
    } catch (java.nio.file.InvalidPathException e) {
      throw new ConfigException(key + ": not a file path (" + e.getReason() + ")");
    }
  }

  private static Optional<String> optional(Map<String, String> v, String key) {
    String s = v.get(key).trim();
    return s.isEmpty() ? Optional.empty() : Optional.of(s);
  }

  private static Duration duration(Map<String, String> v, String key) {
    return Durations.parse(key, v.get(key));
  }

  /**
   * A duration that would break the gateway at run time below {@code min} (a zero timer period, no
   * send window) or above {@code max} (a timeout PostgreSQL or Vert.x cannot take, a timer that
   * never fires in practice, milliseconds that overflow a long).
   */
  private static Duration between(Map<String, String> v, String key, String min, String max) {
    return atMost(key, atLeast(key, duration(v, key), min, "", v.get(key)), max, "", v.get(key));
  }

  private static Duration atMost(Map<String, String> v, String key, String max) {
    return atMost(key, duration(v, key), max, "", v.get(key));
  }

  private static Duration atMost(String key, Duration d, String max, String what, String given) {
    if (d.compareTo(Durations.parse(key, max)) > 0) {
      throw new ConfigException(key + ": " + what + "must be at most " + max + ", got " + given.trim());
    }
    return d;
  }

  private static Duration atLeast(String key, Duration d, String min, String what, String given) {
    if (d.compareTo(Durations.parse(key, min)) < 0) {
      throw new ConfigException(key + ": " + what + "must be at least " + min + ", got " + given);
    }
    return d;
  }

  private static List<Duration> durations(Map<String, String> v, String key, String min, String max) {
    if (v.get(key).isBlank()) {
      throw new ConfigException(key + ": give at least one duration, e.g. 5s,30s,2m");
    }
    List<Duration> list = new ArrayList<>();
    for (String part : v.get(key).split(",", -1)) {
      if (part.isBlank()) {
        throw new ConfigException(key + ": a step is empty (two commas in a row, or one at an end), got '"
            + v.get(key).trim() + "'; e.g. 5s,30s,2m");
      }
      Duration step = atLeast(key, Durations.parse(key, part), min, "every step ", part.trim());
      list.add(atMost(key, step, max, "every step ", part));
    }
    return List.copyOf(list);
  }

  private static Map<String, Duration> merchantTtls(String text) {
    return perMerchant("merchant_key_ttl", text, "duration, e.g. acme=7d", (merchant, value) -> {
      Duration ttl = Durations.parse("merchant_key_ttl", value);
      if (ttl.compareTo(MIN_KEY_TTL) < 0 || ttl.compareTo(GatewayConfig.MAX_KEY_TTL) > 0) {
        throw new ConfigException("merchant_key_ttl: " + merchant + " must be between 1s and 30d");
      }
      return ttl;
    });
  }

  /** Comma-separated {@code merchant=value} pairs; a merchant given twice is refused rather than one entry winning. */
  private static <T> Map<String, T> perMerchant(String key, String text, String example,
      java.util.function.BiFunction<String, String, T> parse) {
    Map<String, T> values = new LinkedHashMap<>();
    for (String pair : text.split(",")) {
      if (pair.isBlank()) {
        continue;
      }
      String[] parts = pair.split("=", 2);
      String merchant = parts[0].trim();
      if (parts.length != 2 || !GatewayConfig.MERCHANT_ID.matcher(merchant).matches()) {
        throw new ConfigException(key + ": each entry must be merchant=" + example);
      }
      if (values.put(merchant, parse.apply(merchant, parts[1])) != null) {
        throw new ConfigException(key + ": " + merchant + " is given twice");
      }
    }
    return Map.copyOf(values);
  }

  /** Refuses a per-merchant setting naming a merchant that no key of {@code apiKeys} (key to merchant) belongs to. */
  private static void keyless(String key, Set<String> merchants, Map<String, String> apiKeys) {
    Set<String> withKeys = new java.util.TreeSet<>(apiKeys.values());
    merchants.stream().filter(m -> !withKeys.contains(m)).sorted().findFirst().ifPresent(merchant -> {
      throw new ConfigException(key + ": " + merchant + " has no API key in api_keys (a misspelt merchant id?), so this "
          + "setting would never apply; merchants with a key: " + (withKeys.isEmpty() ? "none" : String.join(", ", withKeys)));
    });
  }

  private static long rateLimit(String key, String text) {
    long limit;
    try {
      limit = Long.parseLong(text.trim());
    } catch (NumberFormatException e) {
      limit = -1;
    }
    if (limit < 0 || limit > MAX_RATE_LIMIT) {
      throw new ConfigException(key + ": requests per second, a whole number from 0 (no limit) to " + MAX_RATE_LIMIT
          + ", got '" + text.trim() + "'");
    }
    return limit;
  }

  private static Map<String, Long> merchantRateLimits(String text) {
    return perMerchant("merchant_rate_limit", text, "requests-per-second, e.g. acme=500",
        (merchant, value) -> rateLimit("merchant_rate_limit: " + merchant, value));
  }

  /**
   * One Redis URL, or for sentinel and cluster several, each parsed here as the Redis client will
   * parse it ({@link RedisURI}), so that a bad one is refused before anything starts. Messages never
   * echo a URL: it may hold a password.
   */
  private static String redisUrls(Map<String, String> v, String mode) {
    List<String> urls = GatewayConfig.splitRedisUrls(v.get("redis_url"));
    if (urls.isEmpty()) {
      throw new ConfigException("redis_url: must be set, e.g. redis://127.0.0.1:6379");
    }
    if (mode.equals("standalone") && urls.size() > 1) {
      // The standalone client would use the first and ignore the rest without a word.
      throw new ConfigException("redis_url: standalone mode takes one URL, got " + urls.size()
          + "; for several, set redis_mode to sentinel (the sentinels' URLs) or cluster (seed nodes)");
    }
    for (int i = 0; i < urls.size(); i++) {
      String which = urls.size() == 1 ? "redis_url: " : "redis_url: URL " + (i + 1) + " of " + urls.size() + ": ";
      String problem = redisUrlProblem(urls.get(i));
      if (problem == null && mode.equals("cluster") && database(urls.get(i)).matches("/0*[1-9]\\d*")) {
        // Known without asking the server; outside a cluster the number of databases is the
        // server's setting ('databases'), and one it lacks stops start-up with its own answer.
        problem = "a Redis Cluster has database 0 only; leave the path out or give /0";
      }
      if (problem != null) {
        throw new ConfigException(which + problem);
      }
    }
    long tls = urls.stream().filter(url -> url.startsWith("rediss://")).count();
    if (tls != 0 && tls != urls.size()) {
      // The client would reach the redis:// ones in clear text, their password too: TLS on some
      // nodes of one set only is a mistake, not a deployment to serve.
      throw new ConfigException("redis_url: mixes redis:// and rediss:// URLs; a sentinel set or cluster speaks TLS"
          + " on every node or on none: use rediss:// for all (TLS) or redis:// for all");
    }
    return v.get("redis_url").trim();
  }

  /** The path of a Redis URL, its database number after a slash ({@code /3}), else empty or {@code /}. */
  private static String database(String url) {
    return url.substring(url.indexOf("://") + 3).replaceFirst("^[^/?#]*", "").replaceFirst("[?#].*$", "");
  }

  /** What is wrong with one Redis URL, or null; never its user information, host or values, at most a parameter's name. */
  private static String redisUrlProblem(String url) {
    if (!url.startsWith("redis://") && !url.startsWith("rediss://")) {
      return "must start with redis:// or rediss://";
    }
    String problem = authorityProblem(url, url.indexOf("://") + 3, 6379);
    if (problem != null) {
      return problem;
    }
    String database = database(url);
    if (!database.isEmpty() && !database.equals("/") && !database.matches("/\\d{1,9}")) {
      return "the path must be a database number (redis://host:6379/0); a / ? or # in the password must be "
          + "percent-encoded (%2F %3F %23)";
    }
    try {
      new RedisURI(url);
    } catch (RuntimeException e) {
      return "not a valid Redis URL (redis://[user:password@]host[:port][/database])";
    }
    for (String name : url.startsWith("redis://") ? UrlQuery.names(url) : List.<String>of()) {
      // The client reads TLS from the scheme alone and ignores such a flag: clear text.
      String lower = name.toLowerCase(Locale.ROOT);
      if ((lower.equals("ssl") || lower.equals("tls")) && asksForTls(UrlQuery.parameter(url, lower).orElse(""))) {
        return "parameter " + name + " is not read by the gateway, which would connect without TLS; TLS to Redis is "
            + "chosen by the scheme: rediss://";
      }
    }
    return null;
  }

  /**
   * The user information, host and port that start at {@code from} in a connection URL: a port of
   * 1-65535, percent escapes of two hex digits, no space or control character. Null when fine.
   * Never returns any part of the URL.
   */
  private static String authorityProblem(String url, int from, int defaultPort) {
    int end = from;
    while (end < url.length() && "/?#".indexOf(url.charAt(end)) < 0) {
      end++;
    }
    String authority = url.substring(from, end);
    int at = authority.lastIndexOf('@');
    String hostPort = authority.substring(at + 1);
    for (int i = 0; i < url.length(); i++) {
      char c = url.charAt(i);
      if (c <= ' ' || c == 0x7f) {
        return (i < from + at ? "the user name or password" : "the URL") + " holds a space or control character; "
            + "percent-encode it (a space is %20)";
      }
    }
    Matcher escape = BAD_ESCAPE.matcher(url);
    if (escape.find()) {
      return (escape.start() < from + at ? "the user name or password" : "the URL") + " holds a % that is not followed by "
          + "two hex digits; write a literal % as %25";
    }
    String port;
    if (hostPort.startsWith("[")) {
      int close = hostPort.indexOf(']');
      if (close < 0) {
        return "an IPv6 host must be closed with ]";
      }
      port = hostPort.substring(close + 1);
    } else {
      port = hostPort.indexOf(':') < 0 ? "" : hostPort.substring(hostPort.indexOf(':'));
    }
    if (port.isEmpty()) {
      return null;
    }
    String digits = port.substring(1);
    // Not echoed: a password holding a / ends the authority early, and its start would be read as the port.
    if (!digits.matches("\\d{1,9}") || Integer.parseInt(digits) < 1 || Integer.parseInt(digits) > 65535) {
      return "the port must be a number 1-65535 (without one, " + defaultPort + "); a / ? or # in the password must be "
          + "percent-encoded (%2F %3F %23)";
    }
    return null;
  }

  /**
   * An http(s) URL with a host and at most a path. The connector appends its own paths (/charges …)
   * and sends no credentials, query or fragment, so none may be given: they would be ignored, and a
   * password would end up in the start-up log line and in every claim's provider id. Errors never
   * echo the value, which may hold a secret.
   */
  private static Optional<String> providerUrl(Map<String, String> v, String provider) {
    Optional<String> url = optional(v, "provider_url");
    if (!provider.equals("http")) {
      return url; // unused by the simulator
    }
    if (url.isEmpty()) {
      throw new ConfigException("provider_url: must be set when provider is http");
    }
    return Optional.of(httpUrl("provider_url", url.get(), "the connector adds its own paths to the URL's"));
  }

  /** The sentinels' master set: needed in sentinel mode, where a blank one names no master to ask for. */
  private static String redisMasterName(Map<String, String> v, String redisMode) {
    String name = v.get("redis_master_name").trim();
    if (name.isEmpty() && redisMode.equals("sentinel")) {
      throw new ConfigException("redis_master_name: must be set in sentinel mode (the master set's name, e.g. mymaster)");
    }
    return name;
  }

  /**
   * The collector's URL, checked only when spans are exported ({@code tracing: otlp}), as
   * {@link #providerUrl} is: the exporter sends no credentials and appends {@code /v1/traces} to an
   * endpoint without a path (after a query, where it would be no path at all); one it cannot parse
   * failed start-up with the URL in the line, one with no host or port lost every span.
   */
  private static String otlpEndpoint(Map<String, String> v, String tracing) {
    String url = url(v, "otlp_endpoint", "http://", "https://");
    return tracing.equals("otlp") ? httpUrl("otlp_endpoint", url, "spans go to the endpoint, /v1/traces added without a path") : url;
  }

  /**
   * {@code url} if it is an http(s) URL with a host, an optional port of 1-65535 and at most a path;
   * else refused naming {@code key}, never echoing the URL. {@code paths}: why no query or fragment.
   */
  private static String httpUrl(String key, String url, String paths) {
    URI uri;
    try {
      uri = new URI(url);
    } catch (URISyntaxException e) {
      throw new ConfigException(key + ": not a URL (" + e.getReason() + ")");
    }
    if (!"http".equals(uri.getScheme()) && !"https".equals(uri.getScheme())) {
      throw new ConfigException(key + ": must start with http:// or https://");
    }
    if (uri.getHost() == null) {
      throw new ConfigException(key + ": needs a valid host name (letters, digits, dots and dashes; no underscore)");
    }
    // -1: none given; 0 is no port anything listens on, and every connection would fail.
    if (uri.getPort() == 0 || uri.getPort() > 65535) {
      throw new ConfigException(key + ": the port must be 1-65535, got " + uri.getPort());
    }
    if (uri.getRawUserInfo() != null) {
      throw new ConfigException(key + ": must not carry credentials (user:password@), which are never sent");
    }
    if (uri.getRawQuery() != null || uri.getRawFragment() != null) {
      throw new ConfigException(key + ": must not have a query or a fragment; " + paths);
    }
    return url;
  }

  private static Optional<String> providerName(Map<String, String> v) {
    Optional<String> name = optional(v, "provider_name");
    if (name.isPresent() && !GatewayConfig.PROVIDER_NAME.matcher(name.get()).matches()) {
      throw new ConfigException("provider_name: 1-64 letters, digits, '.', '_' or '-', got '" + name.get() + "'");
    }
    return name;
  }

  /**
   * PostgreSQL's URL; {@code sslmode=verify-ca} and {@code verify-full} check the server against the
   * CA in {@code sslrootcert}, so they are refused without it (Postgres#connectOptions).
   */
  private static String pgUrl(Map<String, String> v, Consumer<String> warnings) {
    String url = url(v, "pg_url", "postgresql://", "postgres://");
    // Parsed here as the client will parse it, whose error echoes the whole URL with its password,
    // and only once the gateway had started: a bad URL is refused first, in words that hold none of it.
    String problem = authorityProblem(url, url.indexOf("://") + 3, 5432);
    if (problem != null) {
      throw new ConfigException("pg_url: " + problem);
    }
    try {
      PgConnectOptions.fromUri(UrlQuery.without(url.replaceFirst("^postgres://", "postgresql://"), "sslrootcert"));
    } catch (RuntimeException e) {
      throw new ConfigException("pg_url: not a valid PostgreSQL URL (postgresql://user:password@host:port/database"
          + "?sslmode=...; percent-encode any of : / @ ? # % in the password)");
    }
    tlsAsAsked(url);
    unreadParameters(url, warnings);
    String mode = UrlQuery.parameter(url, "sslmode").orElse("").toLowerCase(Locale.ROOT);
    String rootCert = UrlQuery.parameter(url, "sslrootcert").orElse(null);
    if ((mode.equals("verify-ca") || mode.equals("verify-full")) && rootCert == null) {
      throw new ConfigException("pg_url: sslmode=verify-ca and verify-full need sslrootcert=<path to the PEM of the "
          + "CA that signed PostgreSQL's certificate>; or sslmode=require to encrypt without checking it");
    }
    if (rootCert != null && !(Files.isRegularFile(Path.of(rootCert)) && Files.isReadable(Path.of(rootCert)))) {
      throw new ConfigException("pg_url: sslrootcert=" + rootCert + " is not a readable file (a PEM of the CA that "
          + "signed PostgreSQL's certificate; libpq's 'system' is not supported)");
    }
    return url;
  }

  /**
   * Refuses a pg_url that asks for TLS only in words the PostgreSQL client does not read: it ignores
   * them without a word, so {@code ssl=true} (JDBC's spelling), {@code requiressl=1} or a misspelt
   * {@code ssl_mode=require} connected in plain text. With {@code sslmode} given it decides, as in
   * libpq and JDBC; other TLS parameters ({@code sslcert}, {@code sslsni} …) are ignored, as before.
   * And sslmode or sslrootcert given twice: the check here reads the first, the client may take another.
   */
  private static void tlsAsAsked(String url) {
    List<String> names = UrlQuery.names(url);
    Set<String> seen = new HashSet<>();
    for (String name : names) {
      String lower = name.toLowerCase(Locale.ROOT);
      if ((lower.equals("sslmode") || lower.equals("sslrootcert")) && !seen.add(lower)) {
        throw new ConfigException("pg_url: " + lower + " is given twice; keep one");
      }
    }
    if (seen.contains("sslmode")) {
      return;
    }
    for (String name : names) {
      String lower = name.toLowerCase(Locale.ROOT);
      boolean asks = lower.replace("_", "").replace("-", "").equals("sslmode")
          || (lower.equals("ssl") || lower.equals("requiressl")) && asksForTls(UrlQuery.parameter(url, lower).orElse(""));
      if (asks) {
        throw new ConfigException("pg_url: parameter " + name + " is not read by the gateway, which would connect "
            + "without TLS; ask for it with sslmode=require (or verify-ca or verify-full, with sslrootcert)");
      }
    }
  }

  /**
   * The pg_url parameters used: the address and the login (also as parameters, which the PostgreSQL
   * client reads over the URL's own parts: {@code host}, {@code hostaddr}, {@code port}, {@code user},
   * {@code password}, {@code dbname}, and {@code database}, which its options take as they are),
   * {@code sslmode} and {@code sslrootcert}, and {@code application_name} with libpq's
   * {@code fallback_application_name} (Postgres#applicationName). Any other is ignored: by the client
   * ({@code connect_timeout}, {@code target_session_attrs} …), or by the gateway ({@code options},
   * {@code search_path}: the pools' sessions are the gateway's own, a URL must not turn off durable
   * commits with {@code -c synchronous_commit=off}).
   */
  private static final Pattern PLAIN_PARAMETER = Pattern.compile("[A-Za-z0-9_.-]{1,64}");
  private static final Set<String> USED_PG_PARAMETERS = Set.of("host", "hostaddr", "port", "user", "password", "dbname",
      "database", "sslmode", "sslrootcert", "application_name", "fallback_application_name");

  /**
   * Warns once, naming them (never the URL, which may hold a password), about pg_url parameters that
   * nothing uses: {@code connect_timeout}, {@code target_session_attrs}, {@code options} … were
   * ignored without a word by a gateway whose user expected them to work. Not refused: a deployment
   * that starts with one today would stop starting.
   */
  private static void unreadParameters(String url, Consumer<String> warnings) {
    List<String> names = UrlQuery.names(url).stream()
        .filter(name -> !USED_PG_PARAMETERS.contains(name.toLowerCase(Locale.ROOT)))
        .distinct()
        .toList();
    // A name that is not a plain word (decoded control characters, a piece of an unencoded password
    // after an &) is counted, not written into the line.
    List<String> unread = new ArrayList<>(names.stream().filter(name -> PLAIN_PARAMETER.matcher(name).matches()).toList());
    if (unread.size() < names.size()) {
      unread.add((names.size() - unread.size()) + " not shown (not a plain name)");
    }
    if (!unread.isEmpty()) {
      warnings.accept("pg_url: " + (unread.size() == 1 ? "parameter " : "parameters ") + String.join(", ", unread)
          + (unread.size() == 1 ? " is" : " are") + " ignored (the gateway sets its own connect deadline and session "
          + "settings; docs/operations.md, \"PostgreSQL\")");
    }
  }

  /** The values that leave a flag such as {@code ssl=} off; any other turns it on. */
  private static final Set<String> FLAG_OFF = Set.of("false", "0", "no", "off", "disable");

  /** Whether a flag's value ({@code ssl=true}) turns it on: anything but false, 0, no, off or disable. */
  private static boolean asksForTls(String value) {
    return !FLAG_OFF.contains(value.trim().toLowerCase(Locale.ROOT));
  }

  private static String url(Map<String, String> v, String key, String... schemes) {
    String s = v.get(key).trim();
    for (String scheme : schemes) {
      if (s.startsWith(scheme)) {
        return s;
      }
    }
    throw new ConfigException(key + ": must start with " + String.join(" or ", schemes));
  }

  /**
   * Unset (the admin endpoints closed), or at least {@link #MIN_ADMIN_TOKEN_CHARS} visible ASCII
   * characters: the one secret of every /admin/ route, where a token of a few characters is found by
   * trying. The message never holds the token, nor its length.
   */
  private static Optional<String> adminToken(Map<String, String> v) {
    Optional<String> token = optional(v, "admin_token");
    if (token.isPresent() && !ADMIN_TOKEN.matcher(token.get()).matches()) {
      throw new ConfigException("admin_token: must be at least " + MIN_ADMIN_TOKEN_CHARS + " visible ASCII characters "
          + "(no spaces), e.g. openssl rand -hex 32; or unset, which closes the admin endpoints");
    }
    return token;
  }

  /** 0 (any free port) is refused: the ready line would name port 0, and no one could find the port. */
  private static int port(Map<String, String> v, String key) {
    long n = number(v, key);
    if (n < 1 || n > 65535) {
      throw new ConfigException(key + ": must be a port number 1-65535, got " + n);
    }
    return (int) n;
  }

  /**
   * A PEM file of one of {@code kinds} ({@code -----BEGIN <kind>-----}), checked at load: a file
   * missing, unreadable or of the wrong kind otherwise surfaced only as "could not start listening",
   * after the migration ran. Reads the file (small) before any event loop runs.
   */
  private static void pem(String key, String file, String what, String... kinds) {
    Path path;
    try {
      path = Path.of(file);
    } catch (java.nio.file.InvalidPathException e) {
      throw new ConfigException(key + ": not a file path (" + e.getReason() + ")");
    }
    String problem = Unreadable.check(path);
    if (problem != null) {
      throw new ConfigException(key + ": " + file + ": " + problem);
    }
    String text;
    try {
      text = Files.readString(path, StandardCharsets.ISO_8859_1);
    } catch (IOException e) {
      throw new ConfigException(key + ": " + file + ": " + Unreadable.reason(path, e));
    }
    for (String kind : kinds) {
      if (text.contains("-----BEGIN " + kind + "-----")) {
        return;
      }
    }
    String found = text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") ? " (it holds an encrypted key, which is not supported)"
        : text.contains("PRIVATE KEY-----") ? " (it holds a private key)"
        : text.contains("-----BEGIN CERTIFICATE-----") ? " (it holds a certificate)" : "";
    throw new ConfigException(key + ": " + file + ": not " + what + " in PEM (-----BEGIN " + kinds[0] + "-----)" + found);
  }

  private static int positive(Map<String, String> v, String key) {
    long n = number(v, key);
    if (n < 1 || n > 10_000) {
      throw new ConfigException(key + ": must be between 1 and 10000, got " + n);
    }
    return (int) n;
  }

  private static long nonNegative(Map<String, String> v, String key) {
    long n = number(v, key);
    if (n < 0) {
      throw new ConfigException(key + ": must not be negative, got " + n);
    }
    return n;
  }

  private static long number(Map<String, String> v, String key) {
    try {
      return Long.parseLong(v.get(key).trim());
    } catch (NumberFormatException e) {
      throw new ConfigException(key + ": '" + v.get(key) + "' is not a whole number");
    }
  }
}
