package dev.idemgate.ratelimit;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.ToLongFunction;

/**
 * Per-merchant request limits over a sliding second, shared by every API verticle of this process
 * and, through {@link RateLimitSyncVerticle}, by every instance that uses the same Redis.
 *
 * <p>Each merchant's requests are counted in one-second windows of the wall clock. A request is let
 * through while {@code previous * (1 - elapsed) + current < limit}, where {@code current} is this
 * second's count and {@code previous} the last second's, weighted by how much of the sliding second
 * it still covers: a burst at the end of one second is not followed by a full second's worth at the
 * start of the next.
 *
 * <p>The counts are the fleet's as last heard from Redis plus what this instance let through since.
 * The decision never waits on Redis: every exchange (each tick, and whenever a merchant's new
 * requests here reach a tenth of its limit) adds this instance's new counts to the window's key and
 * reads back the total. Between two exchanges the other instances' new requests are unseen, so the
 * fleet can exceed a limit by about what the other instances let through in that time. Without
 * Redis each instance enforces the whole limit on its own traffic alone.
 *
 * <p>Thread-safety: a merchant's window is guarded by its own monitor; the map of windows only grows
 * with merchants that have a limit, which are known from the configuration and the API keys.
 */
public final class MerchantRateLimiter {
  private final ToLongFunction<String> limitOf;
  private static final long BATCHES_PER_LIMIT = 10;
  private final Map<String, Window> windows = new ConcurrentHashMap<>();
  private volatile Runnable onBatchFull = () -> {};

  /** @param limitOf a merchant's requests per second; 0 for no limit */
  public MerchantRateLimiter(ToLongFunction<String> limitOf) {
    this.limitOf = limitOf;
  }

  /** Counts one request of {@code merchant} and says whether it is within the limit; a refused one is not counted. */
  public boolean tryAcquire(String merchant, long nowMillis) {
    long limit = limitOf.applyAsLong(merchant);
    if (limit <= 0) {
      return true;
    }
    Window window = windows.computeIfAbsent(merchant, m -> new Window());
    boolean batchFull;
    synchronized (window) {
      window.roll(nowMillis);
      if (window.estimate(nowMillis) + 1 > limit) {
        return false;
      }
      batchFull = ++window.unsent == Math.max(1, limit / BATCHES_PER_LIMIT);
    }
    if (batchFull) {
      onBatchFull.run();
    }
    return true;
  }

  /**
   * Called, on the caller's thread, each time a merchant's unsent count reaches a tenth of its limit,
   * so that the instances exchange counts at once rather than at the next tick. This bounds what
   * they can let through unseen by one another to about a tenth of the limit each.
   */
  public void onBatchFull(Runnable action) {
    this.onBatchFull = action;
  }

  /**
   * Takes what every active merchant let through here since the last exchange, for sending to Redis.
   * Each returned exchange must be answered with {@link #heard} or {@link #unheard}.
   */
  public List<Exchange> drain(long nowMillis) {
    List<Exchange> out = new ArrayList<>();
    windows.forEach((merchant, window) -> {
      synchronized (window) {
        window.roll(nowMillis);
        if (window.idle()) {
          return;
        }
        out.add(new Exchange(merchant, window.second, window.unsent, window.previousUnsent));
        window.sending += window.unsent;
        window.unsent = 0;
        window.previousUnsent = 0;
      }
    });
    return out;
  }

  /** The fleet's totals for the exchange's second and the one before, each including what it sent. */
  public void heard(Exchange sent, long currentTotal, long previousTotal) {
    Window window = windows.get(sent.merchant());
    synchronized (window) {
      if (window.second == sent.second()) {
        window.sending -= sent.count();
        window.fleet = Math.max(window.fleet, currentTotal);
        window.previous = Math.max(window.previous, previousTotal);
      } else if (window.second == sent.second() + 1) {
        window.previous = Math.max(window.previous, currentTotal);
      }
    }
  }

  /** Redis did not answer: what was sent still counts, as this instance's own. */
  public void unheard(Exchange sent) {
    Window window = windows.get(sent.merchant());
    synchronized (window) {
      if (window.second == sent.second()) {
        window.sending -= sent.count();
        window.fleet += sent.count();
      }
    }
  }

  /**
   * What one exchange sends for one merchant.
   *
   * @param second the epoch second being counted
   * @param count requests let through here in that second since the last exchange
   * @param previousCount requests let through here in the second before, after the last exchange of it
   */
  public record Exchange(String merchant, long second, long count, long previousCount) {}

  /** One merchant's counts; every field is guarded by the window's monitor. */
  private static final class Window {
    long second = Long.MIN_VALUE;
    /** The fleet's count of the second before, as best known. */
    long previous;
    /** Of this second: the fleet's total as last heard (ours included), ours in flight to Redis, ours not yet sent. */
    long fleet;
    long sending;
    long unsent;
    /** Ours of the second before that no exchange has sent yet. */
    long previousUnsent;

    void roll(long nowMillis) {
      long now = Math.floorDiv(nowMillis, 1000);
      if (now <= second) {
        return; // the same second, or the wall clock stepped back: keep counting where we are
      }
      if (now == second + 1) {
        previous = fleet + sending + unsent;
        previousUnsent = unsent;
      } else {
        previous = 0;
        previousUnsent = 0;
      }
      second = now;
      fleet = 0;
      sending = 0;
      unsent = 0;
    }

    double estimate(long nowMillis) {
      double elapsed = Math.min(1, Math.max(0, (nowMillis - second * 1000) / 1000.0));
      return previous * (1 - elapsed) + fleet + sending + unsent;
    }

    boolean idle() {
      return unsent == 0 && previousUnsent == 0 && sending == 0 && fleet == 0 && previous == 0;
    }
  }
}
