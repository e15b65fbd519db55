package dev.idemgate.ratelimit;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.storage.PipelinedRedis;
import dev.idemgate.storage.RedisClients;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Shares the {@link MerchantRateLimiter}'s counts between instances, off the request path: every
 * {@value #INTERVAL_MS} ms, and at once when a counter asks for it, one script per counter with
 * counts Redis has not confirmed brings the counter's Redis keys for this second and the one before
 * up to this instance's totals, and reads back the other instances' counts. The scripts go out
 * pipelined on the verticle's one connection, at most {@value #SCRIPTS_PER_WRITE} per write and one
 * write at a time, within the client's queue of 4,096 (against a cluster, one write each: the
 * counters are in different slots). The keys expire a few seconds after their second. A failed
 * script (no answer in {@code redis_timeout}, no connection, an error reply of any script in its
 * write) is counted by {@code idemgate_rate_limit_exchange_failures_total}; Redis may or may not
 * have run it, and its counts go again in the next exchange, which adds only what Redis lacks.
 */
public final class RateLimitSyncVerticle extends VerticleBase {
  private static final Logger log = LoggerFactory.getLogger(RateLimitSyncVerticle.class);
  // Counters near their limit ask for exchanges as they need them; the tick only shares the others.
  static final long INTERVAL_MS = 1_000;
  static final int SCRIPTS_PER_WRITE = 1_000;
  private static final long KEY_TTL_MS = 3_000;
  static final String ADDED = ":added";
  // KEYS[1] this second's count and KEYS[2] its hash of what each instance added to it, KEYS[3] and
  // KEYS[4] the same for the second before; ARGV: this instance's id, its two totals, the keys' TTL.
  // Idempotent, so a timed-out exchange can be sent again: a total adds to its count only what goes
  // past the highest total of this instance applied before. Returns the others' counts (the count
  // less what this instance added). The count's key stays a plain integer (INCRBY), as before.
  // Sent with EVAL each time: Redis keeps the compiled script by its digest, and a few hundred bytes
  // per counter and exchange cost less than handling NOSCRIPT inside a pipelined write.
  private static final String ADD_AND_READ = """
      local function add(count, added, total)
        local before = tonumber(redis.call('HGET', added, ARGV[1])) or 0
        if total > before then
          redis.call('INCRBY', count, total - before)
          redis.call('HSET', added, ARGV[1], total)
          redis.call('PEXPIRE', count, ARGV[4])
          redis.call('PEXPIRE', added, ARGV[4])
          before = total
        end
        return math.max(0, (tonumber(redis.call('GET', count)) or 0) - before)
      end
      return {add(KEYS[1], KEYS[2], tonumber(ARGV[2])), add(KEYS[3], KEYS[4], tonumber(ARGV[3]))}""";
  private final GatewayConfig config;
  private final MerchantRateLimiter limiter;
  private final Counter failures;
  private Redis redis;
  private PipelinedRedis pipeline;
  private long timer = -1;
  private boolean busy;
  private boolean again;

  public RateLimitSyncVerticle(GatewayConfig config, MerchantRateLimiter limiter, MeterRegistry registry) {
    this.config = config;
    this.limiter = limiter;
    this.failures = Counter.builder("idemgate.rate.limit.exchange.failures")
        .description("rate-limit exchanges with Redis that failed (no answer in redis_timeout, no connection, an error), "
            + "one per counter; while it rises each instance holds the limits on its own traffic alone")
        .register(registry);
  }

  @Override
  public Future<?> start() {
    redis = Redis.createClient(vertx, RedisClients.pipelineOptions(config, "rate-limit"));
    pipeline = RedisClients.pipeline(redis, context, config);
    timer = vertx.setPeriodic(INTERVAL_MS, t -> exchange());
    limiter.onExchangeWanted(() -> context.runOnContext(v -> exchange()));
    return Future.succeededFuture();
  }

  @Override
  public Future<?> stop() {
    limiter.onExchangeWanted(() -> {});
    vertx.cancelTimer(timer);
    return pipeline.close().eventually(redis::close);
  }

  /**
   * The Redis key of one counter for one epoch second; the hash tag keeps a merchant's keys on one
   * cluster slot. {@link #ADDED} after it names its hash of what each instance added.
   */
  static String key(MerchantRateLimiter.Counter counter, long second) {
    return "idemgate:rate:{" + counter.merchant() + "}:" + counter.kind().tag() + ":" + second;
  }

  private void exchange() {
    if (busy) {
      again = true; // the previous exchange is still waiting on Redis: go again once it is done
      return;
    }
    List<MerchantRateLimiter.Exchange> batch = limiter.drain(System.currentTimeMillis());
    if (batch.isEmpty()) {
      return;
    }
    busy = true;
    sendFrom(batch, 0).onComplete(done -> {
      busy = false;
      if (again) {
        again = false;
        exchange();
      }
    });
  }

  /** The scripts of {@code batch} from {@code first} on, one write of at most {@value #SCRIPTS_PER_WRITE} after another. */
  private Future<Void> sendFrom(List<MerchantRateLimiter.Exchange> batch, int first) {
    int end = Math.min(batch.size(), first + SCRIPTS_PER_WRITE);
    List<Future<Void>> sent = new ArrayList<>(end - first);
    for (MerchantRateLimiter.Exchange exchange : batch.subList(first, end)) {
      sent.add(send(exchange));
    }
    return Future.join(sent).transform(done -> end < batch.size() ? sendFrom(batch, end) : Future.succeededFuture());
  }

  private Future<Void> send(MerchantRateLimiter.Exchange exchange) {
    String current = key(exchange.counter(), exchange.second());
    String previous = key(exchange.counter(), exchange.second() - 1);
    Request script = Request.cmd(Command.EVAL).arg(ADD_AND_READ).arg(4)
        .arg(current).arg(current + ADDED).arg(previous).arg(previous + ADDED)
        .arg(limiter.instance()).arg(exchange.total()).arg(exchange.previousTotal()).arg(KEY_TTL_MS);
    return pipeline.send(script).timeout(config.redisTimeout().toMillis(), TimeUnit.MILLISECONDS)
        .onSuccess(others -> limiter.heard(exchange, others.get(0).toLong(), others.get(1).toLong()))
        .onFailure(failure -> {
          failures.increment();
          log.debug("rate-limit counts not exchanged: {}", failure.toString());
        })
        .<Void>mapEmpty()
        .otherwiseEmpty();
  }
}
