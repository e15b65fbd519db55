package dev.idemgate.config;

import dev.idemgate.anomaly.DuplicatePayloadPolicy;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Every setting of a running gateway, loaded once at start-up by {@link ConfigLoader} and passed
 * down by constructor. {@link #toString()} masks secrets so the record can be logged as it is.
 *
 * @param apiKeys api key to merchant id, in plain text (development and tests; see conf/idemgate.yaml)
 * @param apiKeysFile the file of hashed API keys (production), re-read every {@code apiKeysReloadInterval}
 */
public record GatewayConfig(
    int httpPort,
    int managementPort,
    String pgUrl,
    int pgPoolSize,
    Duration storeTimeout,
    String redisUrl,
    String redisMode,
    String redisMasterName,
    Duration redisTimeout,
    Optional<String> redisTlsCaFile,
    String redisAtStart,
    Map<String, String> apiKeys,
    Optional<Path> apiKeysFile,
    Duration apiKeysReloadInterval,
    Optional<String> adminToken,
    Duration keyTtl,
    Duration lease,
    String provider,
    Optional<String> providerUrl,
    Optional<String> providerName,
    Duration providerTimeout,
    int providerMaxConnections,
    Duration providerKeyRetention,
    Duration recoveryInterval,
    List<Duration> recoveryBackoff,
    int recoveryBatch,
    Map<String, Duration> merchantKeyTtl,
    int retentionBatch,
    int replayCacheEntries,
    long simulatorLatencyMs,
    long simulatorSlowMs,
    Optional<String> tlsCert,
    Optional<String> tlsKey,
    int apiInstances,
    boolean metricsEnabled,
    Duration drainTimeout,
    Duration requestBodyTimeout,
    Duration httpIdleTimeout,
    long rateLimit,
    Map<String, Long> merchantRateLimit,
    String logLevel,
    String tracing,
    String otlpEndpoint,
    // Anomalies (DESIGN §7)
    DuplicatePayloadPolicy duplicatePayloadPolicy,
    Duration duplicateWindow,
    List<String> duplicateFields) {

  public static final Duration MAX_KEY_TTL = Duration.ofDays(30);
  /** What a merchant id may be, wherever it is configured. */
  public static final Pattern MERCHANT_ID = Pattern.compile("[A-Za-z0-9_.-]{1,64}");
  /**
   * An API key a client can present: 8 or more visible ASCII characters. A space, a control character
   * or a non-ASCII one cannot travel in {@code Authorization: Bearer} as it was given, so such a key
   * would never match.
   */
  public static final Pattern API_KEY = Pattern.compile("[\\x21-\\x7E]{8,}");
  /** What a {@code provider_name} may be: the same as a merchant id. */
  public static final Pattern PROVIDER_NAME = MERCHANT_ID;
  /** A comma that begins the next URL of a {@code redis_url} list. */
  private static final Pattern NEXT_REDIS_URL = Pattern.compile(",(?=\\s*rediss?://)");

  /**
   * Which provider this gateway's claims go to: {@code simulator}, or {@code http <provider_name>},
   * else {@code http <provider_url>}. Recovery only asks about claims made for the same provider, so
   * deployments with different providers can share one database.
   */
  public String providerId() {
    return provider.equals("http") ? "http " + providerName.orElse(providerUrl.orElse("")) : provider;
  }

  /**
   * The provider a payment names, in its answer and in the ledger ({@code payments.provider}, which
   * reconciliation's {@code --provider} selects on): the acquirer's {@code provider_name} when it has
   * one, else {@code simulator} or {@code http}.
   */
  public String ledgerProvider() {
    return provider.equals("http") && providerName.isPresent() ? providerName.get() : provider;
  }

  /**
   * The provider ids whose claims recovery takes: {@link #providerId()}, and with a
   * {@code provider_name} set, also {@code http <provider_url>}, under which the claims made
   * before the name was set were recorded.
   */
  public List<String> recoveredProviderIds() {
    String byUrl = "http " + providerUrl.orElse("");
    return provider.equals("http") && providerName.isPresent() ? List.of(providerId(), byUrl) : List.of(providerId());
  }

  /**
   * The names this acquirer's payments have in the ledger, {@link #ledgerProvider()} first: with a
   * {@code provider_name} set, also {@code http}, under which payments made before it was set are
   * recorded (as {@link #recoveredProviderIds()} does for claims).
   */
  public List<String> ledgerProviders() {
    return provider.equals("http") && providerName.isPresent() ? List.of(ledgerProvider(), provider) : List.of(ledgerProvider());
  }

  /** The URLs of {@code redis_url}: one, or for sentinel and cluster several. */
  public List<String> redisUrls() {
    return splitRedisUrls(redisUrl);
  }

  /**
   * Splits a {@code redis_url} list at the commas that begin a new {@code redis://} or {@code
   * rediss://} URL: any other comma is part of a URL (a comma is legal in a password, which the
   * Redis client takes whole). A password holding ",redis://" must percent-encode its comma (%2C).
   */
  static List<String> splitRedisUrls(String text) {
    List<String> urls = new ArrayList<>();
    for (String url : NEXT_REDIS_URL.split(text)) {
      if (!url.isBlank()) {
        urls.add(url.trim());
      }
    }
    return urls;
  }

  /** How long a merchant's completed keys are replayed: its override, else {@code key_ttl}. */
  public Duration keyTtlFor(String merchantId) {
    return merchantKeyTtl.getOrDefault(merchantId, keyTtl);
  }

  /**
   * How long after its claim a charge that the provider has not seen can no longer reach it: a
   * charge is only sent before the claim's lease ends and takes at most the provider timeout; past
   * that, twice over for safety, a provider that has not seen it never will. Recovery frees such a
   * key only then. Counted from the claim's {@code created_at} on PostgreSQL's clock, which comes
   * after the claimer started its send window (PaymentService).
   */
  public Duration lateChargeWindow() {
    return lease.plus(providerTimeout.multipliedBy(2));
  }

  /**
   * Whether the acquirer's "never seen" about a charge claimed at {@code claimedAt} can be
   * believed now: only while it still remembers every request it was sent since then
   * ({@code provider_key_retention}). The earliest the charge could have reached it is the claim
   * itself, so the age is counted from there. Past it, "never seen" may mean "forgotten", and
   * releasing the key would let a retry charge the card again. Both moments must be on one clock:
   * recovery gives PostgreSQL's, which stamps {@code created_at}.
   */
  public boolean providerRemembers(Instant claimedAt, Instant now) {
    return claimedAt.plus(providerKeyRetention).isAfter(now);
  }

  /**
   * How long after its claim recovery will have freed a key the provider never charged whose release
   * PostgreSQL did not take (a 502's {@code Retry-After}): not before the late-charge window, nor
   * before recovery may take the claim over (its lease and {@link #takeoverGrace}, the later of the
   * two when {@code provider_timeout} is under a second), and then at its next pass.
   */
  public Duration heldKeyFreedWithin() {
    Duration takeover = lease.plus(takeoverGrace());
    Duration releasable = takeover.compareTo(lateChargeWindow()) > 0 ? takeover : lateChargeWindow();
    return releasable.plus(recoveryInterval);
  }

  /**
   * The shortest {@code provider_key_retention} under which recovery frees, by itself, the key of a
   * payment the acquirer never saw (a held key, a 502's {@code Retry-After}): it believes "never
   * seen" only about a payment younger than the retention ({@link #providerRemembers}, read when the
   * answer has come), and that answer comes at the latest {@link #heldKeyFreedWithin()} after the
   * claim plus one {@link #inquiryHold()}. With a shorter one no such key is ever freed but by an
   * operator. This bound is about that, not about safety: however short the retention, a "never
   * seen" heard after it is not believed.
   */
  public Duration minProviderKeyRetention() {
    return heldKeyFreedWithin().plus(inquiryHold());
  }

  /**
   * The wait before a pending payment's next inquiry once {@code inquiriesSent} have been sent:
   * {@code recovery_backoff}'s steps in turn, the first from the moment the payment became pending,
   * each later one from the inquiry before, the last repeating (5s, 30s, 2m, 10m, 1h, then hourly
   * by default, as the design lists them).
   */
  public Duration nextInquiryAfter(int inquiriesSent) {
    return recoveryBackoff.get(Math.min(Math.max(inquiriesSent, 0), recoveryBackoff.size() - 1));
  }

  /**
   * How long recovery holds a record it took while it asks the provider about it: the provider's
   * deadline, the event bus's margin over it (ProviderClient) and a few seconds to spare.
   */
  public Duration inquiryHold() {
    return providerTimeout.plusSeconds(5);
  }

  /**
   * How long after its claim a charge may still land at the provider: it is sent within the lease
   * and its answer awaited for {@code provider_timeout}, so past the lease and the takeover grace
   * nothing the claim's owner sent is on its way. Until then reconciliation calls a pending payment
   * in flight, not stuck.
   */
  public Duration chargeInFlight() {
    return chargeInFlight(lease, providerTimeout);
  }

  /** {@link #chargeInFlight()} of these settings. */
  public static Duration chargeInFlight(Duration lease, Duration providerTimeout) {
    return lease.plus(takeoverGrace(providerTimeout));
  }

  /**
   * How long past its lease recovery leaves a PROCESSING record before taking it over, so that a
   * charge sent just before the lease ended has had time to reach the provider.
   */
  public Duration takeoverGrace() {
    return takeoverGrace(providerTimeout);
  }

  private static Duration takeoverGrace(Duration providerTimeout) {
    return providerTimeout.plusSeconds(1);
  }

  /**
   * How long after its claim a request that is still running has answered, about: the charge (at
   * most {@code provider_timeout}), the store's statement around it ({@code store_timeout}), and a
   * second for the event bus, Redis and queueing; never past the lease. A key still in flight after
   * that has most likely lost its holder (its instance died, or hangs), and the answer waits for
   * recovery ({@link #settledAfterLease}). Only told (a 409's Retry-After): nothing is decided on it.
   */
  public Duration holderAnswersWithin() {
    Duration alive = providerTimeout.plus(storeTimeout).plusSeconds(1);
    return alive.compareTo(lease) < 0 ? alive : lease;
  }

  /**
   * How long after a PROCESSING claim's lease ran out recovery has settled it, as long as it keeps
   * up: its takeover grace, then its next pass, and a second for the inquiry and the statement that
   * records it. The record is then completed, pending (202) or released.
   */
  public Duration settledAfterLease() {
    return takeoverGrace().plus(recoveryInterval).plusSeconds(1);
  }

  /**
   * How long after its request a charge may exist with no ledger row: its claim's statement, the
   * lease, recovery's takeover grace, one recovery pass, the inquiry and the statement that records
   * it. Past this the claim has a ledger row or was released, as long as recovery keeps up (it can
   * fall behind when no instance runs it, or when dead instances left more claims than a pass takes).
   */
  public Duration unrecordedChargeWindow() {
    return storeTimeout.plus(lease).plus(takeoverGrace()).plus(recoveryInterval).plus(providerTimeout).plus(storeTimeout);
  }

  /**
   * Payments per second a merchant may make, and reads per second, each: its override, else
   * {@code rate_limit}; 0: no limit.
   */
  public long rateLimitFor(String merchantId) {
    return merchantRateLimit.getOrDefault(merchantId, rateLimit);
  }

  /** Whether any merchant has a request limit, so that requests must be counted at all. */
  public boolean rateLimited() {
    return rateLimit > 0 || merchantRateLimit.values().stream().anyMatch(limit -> limit > 0);
  }

  /**
   * Whether a Redis that cannot be reached at start-up ({@code redis_at_start: optional}) is only a
   * warning, the gateway starting DEGRADED; a Redis that answers with a refusal stops start-up either way.
   */
  public boolean redisOptionalAtStart() {
    return redisAtStart.equals("optional");
  }

  /** API verticle instances to deploy: the configured number, or one per core. */
  public int effectiveApiInstances() {
    return apiInstances > 0 ? apiInstances : Runtime.getRuntime().availableProcessors();
  }

  @Override
  public String toString() {
    String merchants = apiKeys.values().stream().sorted().collect(Collectors.joining(","));
    return "GatewayConfig[http_port=" + httpPort
        + ", management_port=" + managementPort
        + ", pg_url=" + maskPassword(pgUrl)
        + ", pg_pool_size=" + pgPoolSize
        + ", store_timeout=" + storeTimeout
        + ", redis_url=" + maskPassword(redisUrl)
        + ", redis_mode=" + redisMode
        + ", redis_master_name=" + redisMasterName
        + ", redis_timeout=" + redisTimeout
        + ", api_keys=<" + apiKeys.size() + " keys for merchants " + merchants + ">"
        + ", api_keys_file=" + apiKeysFile.map(Path::toString).orElse("<unset>")
        + ", api_keys_reload_interval=" + apiKeysReloadInterval
        + ", admin_token=" + (adminToken.isPresent() ? "<set>" : "<unset>")
        + ", key_ttl=" + keyTtl
        + ", lease=" + lease
        + ", provider=" + provider
        + ", provider_url=" + maskPassword(providerUrl.orElse(""))
        + ", provider_name=" + providerName.orElse("")
        + ", provider_timeout=" + providerTimeout
        + ", provider_max_connections=" + providerMaxConnections
        + ", provider_key_retention=" + providerKeyRetention
        + ", recovery_interval=" + recoveryInterval
        + ", recovery_backoff=" + recoveryBackoff
        + ", recovery_batch=" + recoveryBatch
        + ", retention_batch=" + retentionBatch
        + ", merchant_key_ttl=" + merchantKeyTtl
        + ", replay_cache_entries=" + replayCacheEntries
        + ", simulator_latency_ms=" + simulatorLatencyMs
        + ", simulator_slow_ms=" + simulatorSlowMs
        + ", redis_tls_ca_file=" + redisTlsCaFile.orElse("")
        + ", redis_at_start=" + redisAtStart
        + ", tls_cert=" + tlsCert.orElse("")
        + ", tls_key=" + tlsKey.orElse("")
        + ", api_instances=" + effectiveApiInstances()
        + ", metrics_enabled=" + metricsEnabled
        + ", drain_timeout=" + drainTimeout
        + ", request_body_timeout=" + requestBodyTimeout
        + ", http_idle_timeout=" + httpIdleTimeout
        + ", rate_limit=" + rateLimit
        + ", merchant_rate_limit=" + merchantRateLimit
        + ", log_level=" + logLevel
        + ", tracing=" + tracing
        + ", otlp_endpoint=" + maskPassword(otlpEndpoint)
        + ", duplicate_payload_policy=" + duplicatePayloadPolicy.setting()
        + ", duplicate_window=" + duplicateWindow
        + ", duplicate_fields=" + String.join(",", duplicateFields) + "]";
  }

  /**
   * Hides the password part of a {@code scheme://user:password@host} URL, or of each URL of a
   * comma-separated list. Up to the last {@code @} of each: a password may hold a {@code /} (base64
   * does), which used to end the match, and the password was then logged whole. A password given
   * as a query parameter ({@code ?password=}, which the PostgreSQL client takes, or
   * {@code sslpassword=}) is hidden too.
   */
  public static String maskPassword(String url) {
    // The password runs to the last @ before the next URL of a list, commas included.
    return url.replaceAll("(://[^:/@,]*:)(?:(?!,\\s*[a-z][a-z0-9+.-]*://).)*@", "$1***@")
        // To the next parameter or the next URL of a list: a comma alone is part of the password.
        .replaceAll("(?i)([?&](?:ssl)?password=)(?:(?!,[a-z][a-z0-9+.-]*://)[^&])*", "$1***");
  }
}
