package dev.idemgate.recovery;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Future;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Deletes expired completed keys, oldest first, one batch per statement, until none is left or the
 * time a recovery pass may give it is spent; the next pass goes on from there.
 *
 * <p>The purge must keep up with the keys the instance creates, whatever the rate, so a pass is
 * bounded by time, not by a number of batches: ten batches of 500 a pass (1,000 keys a second at the
 * default 5 s interval) left a soak of 2,500 new payments a second 1,500 expired keys further behind
 * every second. {@code idemgate_retention_lag_seconds} shows a purge that falls behind.
 */
final class RetentionPurge {
  private final RecoveryStore store;
  private final int batch;
  private final long budgetNanos;
  private final Counter purged;
  /** Seconds the oldest expired key left behind by the last purge was past its expiry; 0 when none was left. */
  private final AtomicLong lagSeconds = new AtomicLong();

  /**
   * @param batch keys per statement: each statement holds its rows' locks until it commits, so keep
   *     it small
   * @param budget how long one pass may keep issuing statements; a statement started just before the
   *     end runs to completion
   */
  RetentionPurge(RecoveryStore store, int batch, Duration budget, MeterRegistry registry) {
    this.store = store;
    this.batch = batch;
    this.budgetNanos = budget.toNanos();
    this.purged = Counter.builder("idemgate.retention.purged").description("expired keys deleted").register(registry);
    Gauge.builder("idemgate.retention.lag", lagSeconds, AtomicLong::get).baseUnit("seconds")
        .description("how long the oldest expired key the last purge left behind had been past its expiry (0: none left)")
        .register(registry);
  }

  /** One purge; fails with the statement that failed, having counted what the ones before it deleted. */
  Future<Void> run() {
    return round(System.nanoTime() + budgetNanos);
  }

  long lagSeconds() {
    return lagSeconds.get();
  }

  private Future<Void> round(long deadline) {
    return store.purgeExpired(batch).compose(deleted -> {
      purged.increment(deleted.count());
      if (deleted.count() < batch) {
        lagSeconds.set(0);
        return Future.succeededFuture();
      }
      if (System.nanoTime() - deadline >= 0) {
        // Oldest first: every key left expired no earlier than the newest one just deleted.
        lagSeconds.set(Math.max(0, deleted.newestExpiredFor().toSeconds()));
        return Future.succeededFuture();
      }
      return round(deadline);
    });
  }
}
