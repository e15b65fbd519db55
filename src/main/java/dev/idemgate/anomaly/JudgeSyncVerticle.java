package dev.idemgate.anomaly;

import dev.idemgate.config.GatewayConfig;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.json.JsonObject;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Shares the judge's observations between gateway instances, off the hot path: once a second this
 * instance appends what it observed since the last time (payments and twins per merchant and client)
 * to one Redis stream, and replays what the other instances appended into its own judge. Every
 * instance thus judges a client on all of its traffic, whichever instance served it, at the price of
 * two Redis commands per second per instance. If Redis is away, each instance judges its own share
 * until it is back; entries trimmed before an instance read them (older than
 * {@link #STREAM_RETENTION_MS}) are lost to it, never a payment.
 */
public final class JudgeSyncVerticle extends VerticleBase {
  private static final Logger log = LoggerFactory.getLogger(JudgeSyncVerticle.class);
  static final String STREAM = "idemgate:anomaly:observations";
  /**
   * How long an entry stays in the stream, on Redis's clock (its ids): every instance reads it within
   * a second or two, and one that could not for longer loses what is older. The stream used to be
   * trimmed to about 100 000 entries instead, a count that says nothing of their size: an entry
   * holds one instance's second of every merchant's and client's counts, so a fleet of 20 instances
   * serving 200 merchants of 10 clients each (≈ 90 KB a second per instance) kept ≈ 9 GB in Redis,
   * reached within 90 minutes, for data read once within the second. Now it holds a minute of
   * entries per instance.
   */
  static final long STREAM_RETENTION_MS = 60_000;
  private static final int READ_BATCH = 500;
  /** One client's payments in one batch from one instance, at most: a bound on replay work. */
  private static final long MAX_REPLAYED_PER_CLIENT = 100_000;
  /**
   * The longest the start-up read of the stream's last id may take, whatever {@code redis_timeout}
   * says: its failure costs nothing (this instance then starts from its own clock), while a wait as
   * long as a large {@code redis_timeout} with Redis silent would outlast the gateway's 30 s start-up
   * bound and fail a start that {@code redis_at_start: optional} allows.
   */
  static final long START_READ_MAX_MS = 2_000;

  private final GatewayConfig config;
  private final MeterRegistry registry;
  private final long intervalMs;
  private final String instanceId = UUID.randomUUID().toString();
  private final String stream;
  private Redis redis;
  private AnomalyMonitor monitor;
  private long timer = -1;
  private String lastId;
  /** The time part of the last id read from Redis here (never this instance's clock), 0 before one. */
  private long lastReadMillis;
  private boolean busy;

  public JudgeSyncVerticle(GatewayConfig config, MeterRegistry registry) {
    this(config, registry, 1_000);
  }

  JudgeSyncVerticle(GatewayConfig config, MeterRegistry registry, long intervalMs) {
    this(config, registry, intervalMs, STREAM);
  }

  /** @param stream the stream's Redis key (tests: one of their own) */
  JudgeSyncVerticle(GatewayConfig config, MeterRegistry registry, long intervalMs, String stream) {
    this.config = config;
    this.registry = registry;
    this.intervalMs = intervalMs;
    this.stream = stream;
  }

  @Override
  public Future<?> start() {
    monitor = AnomalyMonitor.of(vertx, config, registry);
    if (config.duplicatePayloadPolicy() == DuplicatePayloadPolicy.OFF) {
      return Future.succeededFuture();
    }
    monitor.startSharing();
    redis = Redis.createClient(vertx, dev.idemgate.storage.RedisClients.options(config, 1, "anomaly-judge"));
    // Only what is appended from now on: an instance starting late does not replay old history. The
    // stream's own last id is asked for, because ids come from the Redis server's clock, not ours.
    return redis.send(Request.cmd(Command.XREVRANGE).arg(stream).arg("+").arg("-").arg("COUNT").arg(1))
        .timeout(Math.min(config.redisTimeout().toMillis(), START_READ_MAX_MS), TimeUnit.MILLISECONDS)
        .map(last -> {
          String id = last != null && last.size() > 0 ? last.get(0).get(0).toString() : "0-0";
          lastReadMillis = millisOf(id);
          return id;
        })
        .otherwise(failure -> System.currentTimeMillis() + "-0")
        .onSuccess(id -> {
          lastId = id;
          timer = vertx.setPeriodic(intervalMs, t -> exchange());
        })
        .mapEmpty();
  }

  @Override
  public Future<?> stop() {
    if (timer >= 0) {
      vertx.cancelTimer(timer);
    }
    return redis == null ? Future.succeededFuture() : redis.close();
  }

  private void exchange() {
    if (busy) {
      return; // the previous exchange is still waiting on Redis
    }
    busy = true;
    publish().compose(v -> read())
        .onFailure(failure -> log.debug("anomaly observations not exchanged: {}", failure.toString()))
        .onComplete(done -> busy = false);
  }

  private Future<Void> publish() {
    JsonObject batch = monitor.drainShared();
    if (batch.isEmpty()) {
      return Future.succeededFuture();
    }
    // Entries more than STREAM_RETENTION_MS older than the last one read here go, by their ids (Redis's
    // clock, which this instance's may not agree with). Exact, not "~": approximate trimming frees only
    // whole nodes of 100 entries, and a small fleet's stream would keep its oldest node for good.
    Request add = Request.cmd(Command.XADD).arg(stream).arg("MINID").arg(Math.max(0, lastReadMillis - STREAM_RETENTION_MS))
        .arg("*").arg("instance").arg(instanceId).arg("batch").arg(batch.encode());
    return send(add).mapEmpty();
  }

  private Future<Void> read() {
    Request xread = Request.cmd(Command.XREAD).arg("COUNT").arg(READ_BATCH).arg("STREAMS").arg(stream).arg(lastId);
    return send(xread).map(reply -> {
      if (reply == null || reply.size() == 0) {
        return null;
      }
      Response entries = entries(reply, stream);
      if (entries == null) {
        return null;
      }
      long now = System.currentTimeMillis();
      for (Response entry : entries) {
        lastId = entry.get(0).toString();
        lastReadMillis = millisOf(lastId);
        Response fields = entry.get(1);
        String instance = null;
        String batch = null;
        for (int i = 0; i + 1 < fields.size(); i += 2) {
          String name = fields.get(i).toString();
          if (name.equals("instance")) {
            instance = fields.get(i + 1).toString();
          } else if (name.equals("batch")) {
            batch = fields.get(i + 1).toString();
          }
        }
        if (batch != null && !instanceId.equals(instance)) {
          apply(new JsonObject(batch), now);
        }
      }
      return null;
    });
  }

  /** RESP3 answers XREAD with a map keyed by stream, RESP2 with an array of [stream, entries] pairs. */
  private static Response entries(Response reply, String stream) {
    try {
      if (reply.containsKey(stream)) {
        return reply.get(stream);
      }
    } catch (UnsupportedOperationException notAMap) {
      // RESP2: fall through
    }
    return reply.get(0).get(1);
  }

  /** The milliseconds part of a stream id ({@code <ms>-<seq>}), 0 for one that has none. */
  static long millisOf(String id) {
    int dash = id.indexOf('-');
    try {
      return Long.parseLong(dash < 0 ? id : id.substring(0, dash));
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /** Replays another instance's counts: its twins spread evenly among its payments. */
  private void apply(JsonObject batch, long now) {
    for (Map.Entry<String, Object> merchant : batch) {
      if (!(merchant.getValue() instanceof JsonObject clients)) {
        continue;
      }
      for (Map.Entry<String, Object> client : clients) {
        if (!(client.getValue() instanceof io.vertx.core.json.JsonArray counts) || counts.size() != 2) {
          continue;
        }
        long payments = Math.min(MAX_REPLAYED_PER_CLIENT, Math.max(0, counts.getLong(0)));
        long twins = Math.min(payments, Math.max(0, counts.getLong(1)));
        monitor.replay(merchant.getKey(), client.getKey(), payments, twins, now);
      }
    }
  }

  private Future<Response> send(Request request) {
    return redis.send(request).timeout(config.redisTimeout().toMillis(), TimeUnit.MILLISECONDS);
  }
}
