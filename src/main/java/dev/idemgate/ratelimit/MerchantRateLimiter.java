package dev.idemgate.ratelimit;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.ToLongFunction;

/**
 * Per-merchant request limits over a sliding second, shared by every API verticle of this process
 * and, through {@link RateLimitSyncVerticle}, by every instance that uses the same Redis. Payments
 * and reads are counted apart, each against the merchant's limit, so that a merchant polling its
 * pending payments does not use up the budget of its new ones.
 *
 * <p>Requests are counted in one-second windows of the wall clock (instances' clocks must agree to
 * well under a second), which a counter never follows back by a small step ({@link Window#time}).
 * A request is let through while {@code previous * (1 - elapsed) + current < limit}, where
 * {@code current} is this second's count and {@code previous} the last second's, weighted by how
 * much of the sliding second it still covers: a burst at the end of one second is not followed by a
 * full second's worth at the start of the next.
 *
 * <p>The counts are this instance's own plus the other instances' as last heard from Redis. The
 * decision never waits on Redis. An exchange sends this instance's totals of the window's second and
 * the one before; Redis adds to each key what it has not yet applied of them (it remembers, per
 * instance, the highest total applied), and answers the others' counts. So a count is applied at
 * most once, and counted here once, even when an exchange timed out after Redis took it: it is just
 * sent again. Exchanges run every tick for the counters with counts Redis has not confirmed, and at
 * once when this instance has let through a tenth of the room it sees. So it carries no more scripts
 * than there were requests, but for resending a failed one, and the others' requests are unseen for
 * a while: the fleet goes past a limit by about a tenth of the room per instance, plus what each lets
 * through, within the room it sees, while its exchange is under way (a round trip to Redis, up to
 * {@code redis_timeout} when Redis is slow); nothing is refused for waiting on Redis. Without Redis
 * each instance enforces the whole limit on its own traffic alone.
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
  /** A wall clock stepping back this much or more starts counting afresh at its new time. */
  private static final long CLOCK_STEP_MS = 2_000;
  /**
   * A smaller step back is given back over this many times its length: a counter's time runs at
   * 1 - 1/SLEW of the wall clock's pace until it meets the wall clock again ({@link Window#time}).
   */
  private static final long SLEW = 4;

  private final ToLongFunction<String> limitOf;
  // One map per kind, so that a request looks its window up by merchant id without allocating a key.
  private final Map<Kind, Map<String, Window>> windows = new EnumMap<>(Map.of(
      Kind.PAYMENTS, new ConcurrentHashMap<>(), Kind.READS, new ConcurrentHashMap<>()));
  private volatile Runnable exchangeNow = () -> {};
  private final String instance = UUID.randomUUID().toString();

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
      long now = window.time(nowMillis);
      window.roll(now);
      double counted = window.estimate(now);
      if (counted + 1 > limit) {
        return false;
      }
      window.ours++;
      askForExchange = !window.askedForExchange
          && window.ours - window.drained >= Math.max(1, (limit - counted) / SHARE_OF_ROOM);
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
   * Takes the counters with counts that Redis has not confirmed yet, for sending to Redis: each
   * exchange carries this instance's totals so far, not what is new, so sending one again is
   * harmless (the script applies only what it has not applied for this instance). Call it only once
   * the exchanges of the last call have been {@link #heard} or have failed: a failed one needs no
   * answer, its counts stay unconfirmed and go again in the next.
   */
  public List<Exchange> drain(long nowMillis) {
    List<Exchange> out = new ArrayList<>();
    windows.forEach((kind, ofKind) -> ofKind.forEach((merchant, window) -> {
      synchronized (window) {
        window.roll(window.time(nowMillis));
        window.askedForExchange = false;
        window.drained = window.ours;
        if (window.ours == window.acked && window.previousOurs == window.previousAcked) {
          return; // Redis holds all of it: what the others did is learned when this instance next has something to send
        }
        out.add(new Exchange(new Counter(merchant, kind), window.second, window.ours, window.previousOurs));
      }
    }));
    return out;
  }

  /**
   * Redis took {@code sent}: the other instances' totals for its second and the one before, as Redis
   * had them once it had applied ours (whatever of ours Redis holds is never in them).
   */
  public void heard(Exchange sent, long othersCurrent, long othersPrevious) {
    Window window = windows.get(sent.counter().kind()).get(sent.counter().merchant());
    synchronized (window) {
      // Answers can come late or out of order: keep the highest of each, as counts only grow.
      if (window.second == sent.second()) {
        window.acked = Math.max(window.acked, sent.total());
        window.others = Math.max(window.others, othersCurrent);
        window.previousAcked = Math.max(window.previousAcked, sent.previousTotal());
        window.previousOthers = Math.max(window.previousOthers, othersPrevious);
      } else if (window.second == sent.second() + 1) {
        window.previousAcked = Math.max(window.previousAcked, sent.total());
        window.previousOthers = Math.max(window.previousOthers, othersCurrent);
      }
    }
  }

  /** This instance's id in Redis, under which the script remembers how much of each total it applied. */
  String instance() {
    return instance;
  }

  /** For tests: how many of this second's requests here Redis confirmed holding (0 for an unknown counter). */
  long confirmed(String merchant, Kind kind) {
    Window window = windows.get(kind).get(merchant);
    if (window == null) {
      return 0;
    }
    synchronized (window) {
      return window.acked;
    }
  }

  /**
   * What one exchange sends for one counter.
   *
   * @param second the epoch second being counted
   * @param total requests let through here in that second, all of them so far
   * @param previousTotal requests let through here in the second before, all of them
   */
  public record Exchange(Counter counter, long second, long total, long previousTotal) {}

  /**
   * One counter's counts; every field is guarded by the window's monitor. Invariant: {@code acked <=
   * ours} and {@code previousAcked <= previousOurs}; what this instance let through is counted once,
   * in {@code ours}, whatever Redis said, and the others' counts never include it.
   */
  private static final class Window {
    long second = Long.MIN_VALUE;
    /** Of this second: let through here; of those, the most Redis confirmed holding; {@code ours} at the last drain. */
    long ours;
    long acked;
    long drained;
    /** Of this second: the other instances' count as last heard from Redis. */
    long others;
    /** The same of the second before ({@code drained} aside). */
    long previousOurs;
    long previousAcked;
    long previousOthers;
    boolean askedForExchange;
    /** The latest time this counter was at ({@link #time}), and the last step back of the wall clock being given back. */
    long latest = Long.MIN_VALUE;
    long skewAtStep;
    long wallAtStep;

    /**
     * This counter's time for a reading of the wall clock: the wall clock, but never earlier than a
     * time already used. A wall clock that steps back a little (NTP, a resumed VM) is not followed at
     * once: the counter goes on from where it was and slows to 1 - 1/{@link #SLEW} of the wall
     * clock's pace until it meets it again. Followed at once, the second before weighed in full again
     * and this one's count went on for up to two seconds, so a merchant at 60 % of its limit was
     * refused for a second or more (MerchantRateLimiterTest). A step back of {@link #CLOCK_STEP_MS}
     * or more starts counting afresh at the new time, so that this instance's seconds are not long
     * apart from the others' in Redis while it is given back.
     */
    long time(long wallMillis) {
      if (wallMillis < latest && latest - wallMillis >= CLOCK_STEP_MS) {
        skewAtStep = 0;
        latest = wallMillis;
        return wallMillis;
      }
      long time = wallMillis + Math.max(0, skewAtStep - (wallMillis - wallAtStep) / SLEW);
      if (time < latest) {
        skewAtStep = latest - wallMillis;
        wallAtStep = wallMillis;
        time = latest;
      }
      latest = time;
      return time;
    }

    /** Moves to the second of {@code nowMillis}, a counter's {@link #time}: the same second, a later one, or one long before (a big step back). */
    void roll(long nowMillis) {
      long now = Math.floorDiv(nowMillis, 1000);
      if (now == second) {
        return;
      }
      if (now == second + 1) {
        previousOurs = ours;
        previousAcked = acked;
        previousOthers = others;
      } else {
        previousOurs = 0;
        previousAcked = 0;
        previousOthers = 0;
      }
      second = now;
      ours = 0;
      acked = 0;
      drained = 0;
      others = 0;
    }

    double estimate(long nowMillis) {
      double elapsed = Math.min(1, Math.max(0, (nowMillis - second * 1000) / 1000.0));
      return (previousOthers + previousOurs) * (1 - elapsed) + others + ours;
    }
  }
}
