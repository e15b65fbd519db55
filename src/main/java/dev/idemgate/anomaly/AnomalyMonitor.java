package dev.idemgate.anomaly;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.storage.PipelinedRedis;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.shareddata.LocalMap;
import io.vertx.core.shareddata.Shareable;
import io.vertx.redis.client.Redis;
import io.vertx.sqlclient.Pool;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The anomaly state of one gateway process: the {@link TwinRateJudge}, the recent twin pairs, the
 * {@code idemgate.anomaly.*} meters and the flag log event. One per Vert.x instance, found through
 * its local shared data, so the API verticles (which feed it) and the management verticle (which shows
 * it) share it without constructor wiring or static state.
 *
 * <p>The twin records themselves live in Redis and are shared by every instance; the judge is in
 * memory, fed by this instance's API verticles and, through {@link JudgeSyncVerticle}, by the other
 * instances' observations (docs/anomalies.md).
 */
public final class AnomalyMonitor implements Shareable {
  private static final Logger log = LoggerFactory.getLogger(AnomalyMonitor.class);
  private static final String SHARED_MAP = "idemgate.anomaly";
  static final int RECENT_TWINS = 200;

  /** A twin pair as the admin view shows it: key hashes and times, never a key or a payload. */
  public record TwinPair(String merchant, String client, String keyHash, String originalKeyHash,
      String originalPaymentId, long originalAtMillis, long twinAtMillis, String outcome) {}

  private final GatewayConfig config;
  private final TwinRateJudge judge;
  private final Deque<TwinPair> recent = new ArrayDeque<>();
  /** Observations not yet shared with the other instances: merchant → client → {payments, twins}. */
  private final Map<String, Map<String, long[]>> unshared = new HashMap<>();
  private volatile boolean sharing;
  private final Counter first;
  private final Counter sameKey;
  private final Counter twinChecks;
  private final Counter unobserved;
  private final Counter flaggedTwins;
  private final Counter rejectedTwins;
  private final Counter intendedTwins;
  private final Counter allowedTwins;
  private final Counter clientFlags;

  AnomalyMonitor(GatewayConfig config, MeterRegistry registry, TwinRateJudge.Settings settings) {
    this.config = config;
    this.judge = new TwinRateJudge(settings);
    first = check(registry, "first");
    sameKey = check(registry, "same_key");
    twinChecks = check(registry, "twin");
    unobserved = check(registry, "unobserved");
    String policy = config.duplicatePayloadPolicy().setting();
    flaggedTwins = twins(registry, policy, "flagged");
    rejectedTwins = twins(registry, policy, "rejected");
    intendedTwins = twins(registry, policy, "intended");
    allowedTwins = twins(registry, policy, "allowed");
    clientFlags = Counter.builder("idemgate.anomaly.client.flags")
        .description("Times a client was flagged for an abnormal twin rate").register(registry);
    Gauge.builder("idemgate.anomaly.flagged.clients", judge, TwinRateJudge::flaggedCount)
        .description("Clients flagged right now by this instance").register(registry);
  }

  /** The monitor of this Vert.x instance, created on first use. */
  public static AnomalyMonitor of(Vertx vertx, GatewayConfig config, MeterRegistry registry) {
    LocalMap<String, AnomalyMonitor> shared = vertx.sharedData().getLocalMap(SHARED_MAP);
    return shared.computeIfAbsent("monitor", k -> new AnomalyMonitor(config, registry, TwinRateJudge.Settings.defaults()));
  }

  /**
   * A detector for one API verticle, on that verticle's own Redis pipeline and PostgreSQL pool; its
   * own connection for the script comes from {@code redis}, the gate's client, whose connections are
   * closed when they stop answering.
   */
  public TwinDetector detector(PipelinedRedis pipeline, Redis redis, Pool pool) {
    return detector(pipeline, redis, pool, CredentialScanner.NONE);
  }

  /** @param credentials what a client id may not hold ({@link ClientIds}) */
  public TwinDetector detector(PipelinedRedis pipeline, Redis redis, Pool pool, CredentialScanner credentials) {
    return new TwinDetector(this, pipeline, redis, pool, credentials);
  }

  public GatewayConfig config() {
    return config;
  }

  public TwinRateJudge judge() {
    return judge;
  }

  void unobserved() {
    unobserved.increment();
  }

  void recordSameKey() {
    sameKey.increment();
  }

  void recordFirst(String merchant, String client, long now) {
    first.increment();
    share(merchant, client, false);
    judged(judge.record(merchant, client, false, now));
  }

  void recordTwin(String merchant, String client, String keyHash, TwinVerdict verdict, long now) {
    twinChecks.increment();
    TwinVerdict.Twin twin;
    String outcome;
    boolean intended = false;
    boolean heldAgainstClient = true;
    if (verdict instanceof TwinVerdict.Reject reject) {
      twin = reject.twin();
      outcome = "rejected";
      rejectedTwins.increment();
    } else if (verdict instanceof TwinVerdict.Allowed allowed) {
      twin = allowed.twin();
      intended = allowed.intended();
      if (intended) {
        outcome = "intended";
        intendedTwins.increment();
      } else if (!allowed.originalCharged()) {
        // The original charged nothing (declined, released): a new key is what the client should send.
        outcome = "allowed";
        allowedTwins.increment();
        heldAgainstClient = false;
      } else {
        outcome = "flagged";
        flaggedTwins.increment();
      }
    } else {
      return;
    }
    synchronized (recent) {
      if (recent.size() == RECENT_TWINS) {
        recent.removeLast();
      }
      recent.addFirst(new TwinPair(merchant, client, keyHash, twin.originalKeyHash(), twin.originalPaymentId(),
          twin.originalAtMillis(), now, outcome));
    }
    if (!intended) {
      // A declared repeat is the client telling us it means it: not evidence against the client. Nor is
      // a new attempt at a payment that charged nothing: it is one more payment of its client.
      share(merchant, client, heldAgainstClient);
      judged(judge.record(merchant, client, heldAgainstClient, now));
    }
  }

  /** From now on, observations are queued for {@link JudgeSyncVerticle}. */
  void startSharing() {
    sharing = true;
  }

  private void share(String merchant, String client, boolean twin) {
    if (!sharing) {
      return;
    }
    synchronized (unshared) {
      Map<String, long[]> clients = unshared.computeIfAbsent(merchant, k -> new HashMap<>());
      // Bounded like the judge: past the limit, a client's counts go to the shared overflow bucket.
      String id = clients.containsKey(client) || clients.size() < judge.settings().maxClientsPerMerchant() - 1
          ? client : TwinRateJudge.OVERFLOW_CLIENT;
      long[] counts = clients.computeIfAbsent(id, k -> new long[2]);
      counts[0]++;
      if (twin) {
        counts[1]++;
      }
    }
  }

  /** Takes the queued observations as {@code {merchant: {client: [payments, twins]}}}. */
  JsonObject drainShared() {
    JsonObject batch = new JsonObject();
    synchronized (unshared) {
      unshared.forEach((merchant, clients) -> {
        JsonObject perClient = new JsonObject();
        clients.forEach((client, counts) -> perClient.put(client, new JsonArray().add(counts[0]).add(counts[1])));
        batch.put(merchant, perClient);
      });
      unshared.clear();
    }
    return batch;
  }

  /** Feeds another instance's observations to this judge: its twins spread evenly among its payments. */
  void replay(String merchant, String client, long payments, long twins, long now) {
    long spread = twins == 0 ? Long.MAX_VALUE : Math.max(1, payments / twins);
    long twinsLeft = twins;
    for (long i = 1; i <= payments; i++) {
      boolean twin = twinsLeft > 0 && (i % spread == 0 || payments - i < twinsLeft);
      if (twin) {
        twinsLeft--;
      }
      judged(judge.record(merchant, client, twin, now));
    }
  }

  private void judged(TwinRateJudge.Change change) {
    if (change instanceof TwinRateJudge.Change.Flagged flagged) {
      clientFlags.increment();
      TwinRateJudge.ClientStanding s = flagged.standing();
      log.atWarn().setMessage("client flagged: its twin rate departs from the merchant's norm")
          .addKeyValue("event", "anomaly.client_flagged")
          .addKeyValue("merchant", s.merchant())
          .addKeyValue("client", s.client())
          .addKeyValue("recent_twin_rate", round(s.recentRate()))
          .addKeyValue("reference_rate", round(s.referenceRate()))
          .addKeyValue("recent_payments", round(s.recentPayments()))
          .addKeyValue("payments", s.payments())
          .addKeyValue("twins", s.twins())
          .addKeyValue("evidence", round(s.evidence()))
          .addKeyValue("policy", config.duplicatePayloadPolicy().setting())
          .log();
    } else if (change instanceof TwinRateJudge.Change.Cleared cleared) {
      TwinRateJudge.ClientStanding s = cleared.standing();
      log.atInfo().setMessage("client flag cleared: its twin rate is back to the merchant's norm")
          .addKeyValue("event", "anomaly.client_cleared")
          .addKeyValue("merchant", s.merchant())
          .addKeyValue("client", s.client())
          .addKeyValue("recent_twin_rate", round(s.recentRate()))
          .addKeyValue("reference_rate", round(s.referenceRate()))
          .log();
    }
  }

  /** The admin view: flagged clients, the first {@code limit} clients by standing, and recent twin pairs. */
  public JsonObject view(String merchant, int limit) {
    TwinRateJudge.Shown shown = judge.shown(merchant, limit);
    JsonArray flagged = new JsonArray();
    shown.flagged().forEach(s -> flagged.add(standing(s)));
    JsonArray clients = new JsonArray();
    shown.clients().forEach(s -> clients.add(standing(s)));
    JsonArray twins = new JsonArray();
    synchronized (recent) {
      for (TwinPair pair : recent) {
        if (twins.size() >= limit) {
          break;
        }
        if (merchant == null || merchant.equals(pair.merchant())) {
          twins.add(new JsonObject()
              .put("merchant", pair.merchant())
              .put("client", pair.client())
              .put("key_hash", pair.keyHash())
              .put("original_key_hash", pair.originalKeyHash())
              .put("payment_id", null)
              .put("original_payment_id", pair.originalPaymentId())
              .put("original_at", Instant.ofEpochMilli(pair.originalAtMillis()).toString())
              .put("twin_at", Instant.ofEpochMilli(pair.twinAtMillis()).toString())
              .put("outcome", pair.outcome()));
        }
      }
    }
    return new JsonObject()
        .put("policy", config.duplicatePayloadPolicy().setting())
        .put("duplicate_window_seconds", config.duplicateWindow().toSeconds())
        .put("duplicate_fields", new JsonArray(config.duplicateFields()))
        .put("scope", sharing ? "shared" : "instance")
        .put("flagged_clients", flagged)
        .put("clients", clients)
        .put("recent_twins", twins);
  }

  private static JsonObject standing(TwinRateJudge.ClientStanding s) {
    return new JsonObject()
        .put("merchant", s.merchant())
        .put("client", s.client())
        .put("flagged", s.flagged())
        .put("flagged_at", s.flagged() ? Instant.ofEpochMilli(s.flaggedAtMillis()).toString() : null)
        .put("payments", s.payments())
        .put("twins", s.twins())
        .put("recent_payments", round(s.recentPayments()))
        .put("recent_twin_rate", round(s.recentRate()))
        .put("reference_rate", round(s.referenceRate()))
        .put("evidence", round(s.evidence()));
  }

  private static double round(double x) {
    return Math.round(x * 10_000) / 10_000.0;
  }

  private static Counter check(MeterRegistry registry, String result) {
    return Counter.builder("idemgate.anomaly.checks").tag("result", result)
        .description("Twin checks on POST /pay by result").register(registry);
  }

  private static Counter twins(MeterRegistry registry, String policy, String outcome) {
    return Counter.builder("idemgate.anomaly.twins").tag("policy", policy).tag("outcome", outcome)
        .description("Payments repeating an earlier payment under another key").register(registry);
  }
}
