package dev.idemgate.ratelimit;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.storage.RedisClients;
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
 * {@value #INTERVAL_MS} ms, and at once when a merchant's new requests here reach a tenth of its
 * limit, for each merchant with recent requests one script adds this instance's
 * new counts to the merchant's Redis keys for this second and the one before, and reads back the
 * fleet's totals. The keys expire a few seconds after their second. If Redis does not answer in
 * {@code redis_timeout}, the counts stay this instance's own until it does.
 */
public final class RateLimitSyncVerticle extends VerticleBase {
  private static final Logger log = LoggerFactory.getLogger(RateLimitSyncVerticle.class);
  static final long INTERVAL_MS = 100;
  private static final long KEY_TTL_MS = 3_000;
  // KEYS[1] this second's key, KEYS[2] the second before; ARGV: the two counts, the keys' TTL.
  private static final String ADD_AND_READ = """
      local current = redis.call('INCRBY', KEYS[1], ARGV[1])
      redis.call('PEXPIRE', KEYS[1], ARGV[3])
      local previous = redis.call('INCRBY', KEYS[2], ARGV[2])
      redis.call('PEXPIRE', KEYS[2], ARGV[3])
      return {current, previous}""";

  private final GatewayConfig config;
  private final MerchantRateLimiter limiter;
  private final long intervalMs;
  private Redis redis;
  private long timer = -1;
  private boolean busy;
  private boolean again;

  public RateLimitSyncVerticle(GatewayConfig config, MerchantRateLimiter limiter) {
    this(config, limiter, INTERVAL_MS);
  }

  RateLimitSyncVerticle(GatewayConfig config, MerchantRateLimiter limiter, long intervalMs) {
    this.config = config;
    this.limiter = limiter;
    this.intervalMs = intervalMs;
  }

  @Override
  public Future<?> start() {
    redis = Redis.createClient(vertx, RedisClients.options(config, 2, "rate-limit"));
    timer = vertx.setPeriodic(intervalMs, t -> exchange());
    limiter.onBatchFull(() -> context.runOnContext(v -> exchange()));
    return Future.succeededFuture();
  }

  @Override
  public Future<?> stop() {
    limiter.onBatchFull(() -> {});
    vertx.cancelTimer(timer);
    return redis.close();
  }

  /** The Redis key of one merchant's count for one epoch second; the hash tag keeps a merchant's keys on one cluster slot. */
  static String key(String merchant, long second) {
    return "idemgate:rate:{" + merchant + "}:" + second;
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
    List<Future<Void>> sent = new ArrayList<>(batch.size());
    for (MerchantRateLimiter.Exchange exchange : batch) {
      sent.add(send(exchange));
    }
    Future.join(sent).onComplete(done -> {
      busy = false;
      if (again) {
        again = false;
        exchange();
      }
    });
  }

  private Future<Void> send(MerchantRateLimiter.Exchange exchange) {
    Request script = Request.cmd(Command.EVAL).arg(ADD_AND_READ).arg(2)
        .arg(key(exchange.merchant(), exchange.second()))
        .arg(key(exchange.merchant(), exchange.second() - 1))
        .arg(exchange.count()).arg(exchange.previousCount()).arg(KEY_TTL_MS);
    return redis.send(script).timeout(config.redisTimeout().toMillis(), TimeUnit.MILLISECONDS)
        .onSuccess(totals -> limiter.heard(exchange, totals.get(0).toLong(), totals.get(1).toLong()))
        .onFailure(failure -> {
          log.debug("rate-limit counts not exchanged: {}", failure.toString());
          limiter.unheard(exchange);
        })
        .<Void>mapEmpty()
        .otherwiseEmpty();
  }
}
