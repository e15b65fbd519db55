package dev.idemgate.ratelimit;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.ToLongFunction;

/**
 * Per-merchant request limits over a sliding second, shared by every API verticle of this process
 * and, through {@link RateLimitSyncVerticle}, by every instance that uses the same Redis. Payments
 * and reads are counted apart, each against the merchant's limit, so that a merchant polling its
 * pending payments does not use up the budget of its new ones.
 *
 * <p>Requests are counted in one-second windows of the wall clock (instances' clocks must agree to
 * well under a second). A request is let through while {@code previous * (1 - elapsed) + current <
 * limit}, where {@code current} is this second's count and {@code previous} the last second's,
 * weighted by how much of the sliding second it still covers: a burst at the end of one second is
 * not followed by a full second's worth at the start of the next.
 *
 * <p>The counts are the fleet's as last heard from Redis plus what this instance let through since.
 * The decision never waits on Redis. An exchange adds this instance's new counts to the window's key
 * and reads back the fleet's total; it runs every tick for the counters with new requests here, and
 * at once when this instance has let through a tenth of the room it sees. So it never carries more
 * scripts than there were requests, and the others' requests are unseen for a while: the fleet goes
 * past a limit by about a tenth of the room per instance, plus what each lets through, within the
 * room it sees, while its exchange is under way (a round trip to Redis, up to {@code redis_timeout}
 * when Redis is slow); nothing is refused for waiting on Redis. Without Redis each instance enforces
 * the whole limit on its own traffic alone.
 *
 * <p>Thread-safety: a window is guarded by its own monitor; the map of windows only grows with
 * merchants that have a limit, which are known from the configuration and the API keys.
 */
public final class MerchantRateLimiter {
  /** What is counted: each kind has its own budget of the merchant's limit. */
  public enum Kind {
    PAYMENTS, READS;

    /** Its part of the Redis key. */
    String tag() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** A merchant's counter of one kind. */
  public record Counter(String merchant, Kind kind) {}

  /** Asks for an exchange once this instance has let through this share of the room it sees. */
  private static final long SHARE_OF_ROOM = 10;
  /** A wall clock stepping back this many whole seconds or more starts counting afresh instead of freezing. */
  private static final long CLOCK_STEP_SECONDS = 2;

  private final ToLongFunction<String> limitOf;
  // One map per kind, so that a request looks its window up by merchant id without allocating a key.
  private final Map<Kind, Map<String, Window>> windows = new EnumMap<>(Map.of(
      Kind.PAYMENTS, new ConcurrentHashMap<>(), Kind.READS, new ConcurrentHashMap<>()));
  private volatile Runnable exchangeNow = () -> {};

  /** @param limitOf a merchant's requests per second; 0 for no limit */
  public MerchantRateLimiter(ToLongFunction<String> limitOf) {
    this.limitOf = limitOf;
  }

  /** Counts one request and says whether it is within the limit; a refused one is not counted. */
  public boolean tryAcquire(String merchant, Kind kind, long nowMillis) {
    long limit = limitOf.applyAsLong(merchant);
    if (limit <= 0) {
      return true;
    }
    Window window = windows.get(kind).computeIfAbsent(merchant, m -> new Window());
    boolean askForExchange;
    synchronized (window) {
      window.roll(nowMillis);
      double counted = window.estimate(nowMillis);
      if (counted + 1 > limit) {
        return false;
      }
      window.unsent++;
      askForExchange = !window.askedForExchange && window.unsent >= Math.max(1, (limit - counted) / SHARE_OF_ROOM);
      window.askedForExchange |= askForExchange;
    }
    if (askForExchange) {
      exchangeNow.run();
    }
    return true;
  }

  /** Called, on the requesting thread, when a counter wants an exchange before the next tick. */
  public void onExchangeWanted(Runnable action) {
    this.exchangeNow = action;
  }

  /**
   * Takes what each counter let through here since the last exchange, for sending to Redis.
   * Each returned exchange must be answered with {@link #heard} or {@link #unheard}.
   */
  public List<Exchange> drain(long nowMillis) {
    List<Exchange> out = new ArrayList<>();
    windows.forEach((kind, ofKind) -> ofKind.forEach((merchant, window) -> {
      synchronized (window) {
        window.roll(nowMillis);
        window.askedForExchange = false;
        if (window.unsent == 0 && window.previousUnsent == 0) {
          return; // nothing new here: what the others did is learned when this instance next has something to send
        }
        out.add(new Exchange(new Counter(merchant, kind), window.second, window.unsent, window.previousUnsent));
        window.sending += window.unsent;
        window.unsent = 0;
        window.previousUnsent = 0;
      }
    }));
    return out;
  }

  /** The fleet's totals for the exchange's second and the one before, each including what it sent. */
  public void heard(Exchange sent, long currentTotal, long previousTotal) {
    Window window = windows.get(sent.counter().kind()).get(sent.counter().merchant());
    synchronized (window) {
      if (window.second == sent.second()) {
        window.sending -= sent.count();
        window.fleet = Math.max(window.fleet, currentTotal);
        window.previous = Math.max(window.previous, previousTotal + window.previousUnheard);
      } else if (window.second == sent.second() + 1) {
        window.previous = Math.max(window.previous, currentTotal + window.previousUnheard);
      }
    }
  }

  /**
   * The exchange failed: what it carried may or may not have reached Redis, so it counts here on top
   * of whatever Redis says from now on (counted twice if Redis did take it: the safe side for a
   * limit). It is not sent again, so if Redis never took it the other instances do not see it.
   */
  public void unheard(Exchange sent) {
    Window window = windows.get(sent.counter().kind()).get(sent.counter().merchant());
    synchronized (window) {
      if (window.second == sent.second()) {
        window.sending -= sent.count();
        window.unheard += sent.count();
      } else if (window.second == sent.second() + 1) {
        window.previousUnheard += sent.count(); // already in previous, as it was in sending when the second ended
      }
    }
  }

  /**
   * What one exchange sends for one counter.
   *
   * @param second the epoch second being counted
   * @param count requests let through here in that second since the last exchange
   * @param previousCount requests let through here in the second before, after the last exchange of it
   */
  public record Exchange(Counter counter, long second, long count, long previousCount) {}

  /** One counter's counts; every field is guarded by the window's monitor. */
  private static final class Window {
    long second = Long.MIN_VALUE;
    /** The fleet's count of the second before, as best known. */
    long previous;
    /**
     * Of this second: the fleet's total as last heard (ours included), ours whose exchange failed, ours
     * in flight to Redis, ours not yet sent.
     */
    long fleet;
    long unheard;
    long sending;
    long unsent;
    /** Ours of the second before: not yet sent by any exchange, and whose exchange failed. */
    long previousUnsent;
    long previousUnheard;
    boolean askedForExchange;

    void roll(long nowMillis) {
      long now = Math.floorDiv(nowMillis, 1000);
      if (now == second || (now < second && second - now < CLOCK_STEP_SECONDS)) {
        return; // the same second, or the clock stepped back a little: go on counting in this one
      }
      if (now == second + 1) {
        previous = fleet + unheard + sending + unsent;
        previousUnsent = unsent;
        previousUnheard = unheard;
      } else {
        previous = 0;
        previousUnsent = 0;
        previousUnheard = 0;
      }
      second = now;
      fleet = 0;
      unheard = 0;
      sending = 0;
      unsent = 0;
    }

    double estimate(long nowMillis) {
      double elapsed = Math.min(1, Math.max(0, (nowMillis - second * 1000) / 1000.0));
      return previous * (1 - elapsed) + fleet + unheard + sending + unsent;
    }
  }
}
