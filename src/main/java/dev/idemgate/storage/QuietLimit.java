package dev.idemgate.storage;

import java.time.Duration;

/**
 * When one kept Redis connection was last heard from (it opened, or answered), and whether it has
 * been quiet for its client's {@link RedisClients#reuseLimit}. Past that, the client's read-idle close
 * may come while a command is being written on it, so its owner writes on a new connection instead
 * ({@link PipelinedRedis}). Not thread-safe: its owner confines it to a loop or guards it with a lock.
 */
public final class QuietLimit {
  private final long limitNanos;
  private long lastHeardNanos;

  /** @param limit zero: a connection is kept however long it is quiet */
  public QuietLimit(Duration limit) {
    this.limitNanos = limit.toNanos();
  }

  public Duration limit() {
    return Duration.ofNanos(limitNanos);
  }

  /** The connection opened, or answered, just now. */
  public void heard() {
    lastHeardNanos = System.nanoTime();
  }

  /** Whether the connection has been quiet too long to be written on again. */
  public boolean passed() {
    return limitNanos > 0 && System.nanoTime() - lastHeardNanos >= limitNanos;
  }
}
