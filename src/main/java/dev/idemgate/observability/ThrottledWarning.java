package dev.idemgate.observability;

import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;

/**
 * A warning that an outage repeats for every request (PostgreSQL down: every payment's claim fails),
 * logged at most once a second; each line after a quiet spell counts the ones not logged since, which
 * go to DEBUG. Metrics count every one; the log only has to show the outage, not flood with it.
 * Safe from any thread.
 */
public final class ThrottledWarning {
  private static final long INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(1);

  private final Logger log;
  private final AtomicLong lastLoggedAt = new AtomicLong(System.nanoTime() - INTERVAL_NANOS);
  private final AtomicLong notLogged = new AtomicLong();

  public ThrottledWarning(Logger log) {
    this.log = log;
  }

  /** As {@link Logger#warn(String, Object...)}, at most once a second. */
  public void warn(String format, Object... args) {
    long now = System.nanoTime();
    long last = lastLoggedAt.get();
    if (now - last < INTERVAL_NANOS || !lastLoggedAt.compareAndSet(last, now)) {
      notLogged.incrementAndGet();
      log.debug(format, args);
      return;
    }
    long skipped = notLogged.getAndSet(0);
    if (skipped == 0) {
      log.warn(format, args);
    } else {
      Object[] counted = Arrays.copyOf(args, args.length + 1);
      counted[args.length] = skipped;
      log.warn(format + " ({} more since the last such line, not logged one by one)", counted);
    }
  }
}
