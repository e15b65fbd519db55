package dev.idemgate.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.ratelimit.MerchantRateLimiter.Counter;
import dev.idemgate.ratelimit.MerchantRateLimiter.Exchange;
import dev.idemgate.ratelimit.MerchantRateLimiter.Kind;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class MerchantRateLimiterTest {
  /** Start of an epoch second, so that offsets read as milliseconds into it. */
  private static final long T = 1_800_000_000_000L;

  private static MerchantRateLimiter limiter(Map<String, Long> limits) {
    return new MerchantRateLimiter(merchant -> limits.getOrDefault(merchant, 0L));
  }

  private static int letThrough(MerchantRateLimiter limiter, String merchant, int tries, long at) {
    int passed = 0;
    for (int i = 0; i < tries; i++) {
      if (limiter.tryAcquire(merchant, Kind.PAYMENTS, at)) {
        passed++;
      }
    }
    return passed;
  }

  @Test
  @DisplayName("a merchant gets exactly its limit in a quiet second, the rest are refused and not counted")
  void limitPerSecond() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 10L));

    assertThat(letThrough(limiter, "m", 25, T + 100)).isEqualTo(10);
    assertThat(letThrough(limiter, "m", 5, T + 900)).isZero();
    // The second after, with the first one's 10 weighted by the 40 % of it the sliding second
    // still covers: 4, so 6 more. Had the refused 20 counted, none would pass.
    assertThat(letThrough(limiter, "m", 25, T + 1_600)).isEqualTo(6);
  }

  @Test
  @DisplayName("a full second is not followed by a full second's worth at once: the sliding second carries it")
  void noDoubleBurstAtTheBoundary() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 100L));
    assertThat(letThrough(limiter, "m", 100, T + 999)).isEqualTo(100);

    assertThat(letThrough(limiter, "m", 100, T + 1_001)).isZero();
    assertThat(letThrough(limiter, "m", 100, T + 1_500)).isEqualTo(50);
    // Two seconds on, the first is forgotten; the second's 50 weigh 50 % at 2.5 s.
    assertThat(letThrough(limiter, "m", 100, T + 2_500)).isEqualTo(75);
    assertThat(letThrough(limiter, "m", 100, T + 9_000)).isEqualTo(100);
  }

  @Test
  @DisplayName("merchants are counted apart, payments and reads each against the limit, and a merchant without a limit is never refused")
  void countersApart() {
    MerchantRateLimiter limiter = limiter(Map.of("small", 3L, "large", 1_000L));

    assertThat(letThrough(limiter, "small", 10, T)).isEqualTo(3);
    assertThat(limiter.tryAcquire("small", Kind.READS, T)).isTrue();
    assertThat(letThrough(limiter, "large", 10, T)).isEqualTo(10);
    assertThat(letThrough(limiter, "unlimited", 10_000, T)).isEqualTo(10_000);
    assertThat(limiter.drain(T + 50)).extracting(Exchange::counter).containsExactlyInAnyOrder(
        new Counter("small", Kind.PAYMENTS), new Counter("small", Kind.READS), new Counter("large", Kind.PAYMENTS));
  }

  @Test
  @DisplayName("what the other instances let through, heard from Redis, counts against the limit here")
  void fleetCountsAgainstTheLimit() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 50L));
    assertThat(letThrough(limiter, "m", 10, T + 100)).isEqualTo(10);

    List<Exchange> sent = limiter.drain(T + 150);
    assertThat(sent).containsExactly(new Exchange(new Counter("m", Kind.PAYMENTS), T / 1000, 10, 0));
    // While the exchange is in flight its 10 still count here.
    assertThat(letThrough(limiter, "m", 5, T + 160)).isEqualTo(5);
    // Redis: the others have 35 this second (45 with our 10).
    limiter.heard(sent.get(0), 35, 0);

    // 35 heard + our 15 = 50: nothing more this second.
    assertThat(letThrough(limiter, "m", 10, T + 200)).isZero();
  }

  @Test
  @DisplayName("an exchange carries totals, so a failed one's counts go again in the next and count here once, "
      + "whether or not Redis took them")
  void failedExchangeGoesAgainCountedOnce() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 20L));
    assertThat(letThrough(limiter, "m", 15, T + 100)).isEqualTo(15);
    assertThat(limiter.drain(T + 150)).containsExactly(new Exchange(new Counter("m", Kind.PAYMENTS), T / 1000, 15, 0));
    // It timed out: no answer. Redis may have taken the 15 or not; either way the script applies what
    // it lacks of the total sent next, and answers the others' count, which ours are never in.
    assertThat(letThrough(limiter, "m", 1, T + 200)).isEqualTo(1);
    List<Exchange> again = limiter.drain(T + 250);
    assertThat(again).containsExactly(new Exchange(new Counter("m", Kind.PAYMENTS), T / 1000, 16, 0));
    limiter.heard(again.get(0), 0, 0);

    assertThat(letThrough(limiter, "m", 10, T + 300)).isEqualTo(4);
    assertThat(limiter.drain(T + 350)).extracting(Exchange::total).containsExactly(20L);
  }

  @Test
  @DisplayName("the last requests of a second are still sent after it ends, as the second before's")
  void lastOfASecondIsStillSent() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 100L));
    letThrough(limiter, "m", 7, T + 100);
    Exchange first = limiter.drain(T + 150).get(0);
    limiter.heard(first, 0, 0);
    letThrough(limiter, "m", 3, T + 980);

    List<Exchange> sent = limiter.drain(T + 1_050);
    assertThat(sent).containsExactly(new Exchange(new Counter("m", Kind.PAYMENTS), T / 1000 + 1, 0, 10));
  }

  @Test
  @DisplayName("a late answer for the second before raises that second's count, never this one's")
  void lateAnswerForTheSecondBefore() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 100L));
    letThrough(limiter, "m", 10, T + 900);
    Exchange sent = limiter.drain(T + 950).get(0);

    // The answer comes after the second ended: the others had 80 in it, 90 with ours.
    assertThat(letThrough(limiter, "m", 1, T + 1_000)).isEqualTo(1);
    limiter.heard(sent, 80, 0);

    // At 1.5 s: 90 * 0.5 + 1 = 46 counted, so 54 more.
    assertThat(letThrough(limiter, "m", 100, T + 1_500)).isEqualTo(54);
  }

  @Test
  @DisplayName("the others' count of the second before, heard in an exchange, weighs on this second")
  void heardSecondBefore() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 100L));
    letThrough(limiter, "m", 1, T + 1_100);

    // The others: none yet this second, 80 the second before.
    limiter.heard(limiter.drain(T + 1_150).get(0), 0, 80);

    // At 1.5 s: 80 * 0.5 + 1 = 41 counted, so 59 more.
    assertThat(letThrough(limiter, "m", 100, T + 1_500)).isEqualTo(59);
  }

  @Test
  @DisplayName("an exchange carries only counters with counts Redis has not confirmed; a wall clock stepping back a little goes on counting, a lot starts afresh")
  void onlyNewCountsAndClockSteps() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 10L));
    letThrough(limiter, "m", 10, T + 100);
    List<Exchange> sent = limiter.drain(T + 150);
    assertThat(sent).hasSize(1);
    limiter.heard(sent.get(0), 0, 0);
    assertThat(limiter.drain(T + 250)).isEmpty();
    assertThat(limiter.drain(T + 3_000)).isEmpty();

    assertThat(letThrough(limiter, "m", 10, T + 5_100)).isEqualTo(10);
    assertThat(letThrough(limiter, "m", 10, T + 4_900)).isZero();
    // Stepped back 3 s: counting that second from nothing beats refusing everyone until the clock catches up.
    assertThat(letThrough(limiter, "m", 10, T + 2_100)).isEqualTo(10);
  }

  /** Requests at {@code perSecond}, evenly spread over {@code realMillis} of real time, on a wall clock reading {@code from} at the first. */
  private static int refusedAtSteadyRate(MerchantRateLimiter limiter, int perSecond, long from, long realMillis) {
    int refused = 0;
    for (long i = 0; i < realMillis * perSecond / 1000; i++) {
      if (!limiter.tryAcquire("m", Kind.PAYMENTS, from + i * 1000 / perSecond)) {
        refused++;
      }
    }
    return refused;
  }

  @Test
  @DisplayName("a merchant at 60 % of its limit is never refused when the wall clock steps back less than two seconds")
  void clockStepBackRefusesNoneWithinTheLimit() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 100L));
    assertThat(refusedAtSteadyRate(limiter, 60, T, 2_000)).isZero();
    // NTP (or a resumed VM) steps the clock back 1.5 s; the merchant goes on at 60 a second.
    assertThat(refusedAtSteadyRate(limiter, 60, T + 500, 3_000)).isZero();
    // The step is given back within four times its length: the counter is on the wall clock's second again.
    assertThat(limiter.tryAcquire("m", Kind.PAYMENTS, T + 9_000)).isTrue();
    assertThat(limiter.drain(T + 9_001)).extracting(Exchange::second).containsExactly(T / 1000 + 9);
  }

  @Test
  @DisplayName("a merchant at 60 % of its limit is never refused when the wall clock steps back within a second")
  void clockStepBackInsideASecondRefusesNoneWithinTheLimit() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 100L));
    assertThat(refusedAtSteadyRate(limiter, 60, T, 1_900)).isZero();
    // Back 0.8 s, from 1.9 s to 1.1 s: still the same epoch second.
    assertThat(refusedAtSteadyRate(limiter, 60, T + 1_100, 3_000)).isZero();
  }

  @Test
  @DisplayName("an exchange is asked for once a tenth of the room left has been let through unsent, once until the next exchange")
  void exchangeWanted() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 100L, "tiny", 3L));
    java.util.concurrent.atomic.AtomicInteger asked = new java.util.concurrent.atomic.AtomicInteger();
    limiter.onExchangeWanted(asked::incrementAndGet);

    // Room 100: asked at the 10th request, then not again before an exchange.
    letThrough(limiter, "m", 9, T + 100);
    assertThat(asked.get()).isZero();
    letThrough(limiter, "m", 16, T + 100);
    assertThat(asked.get()).isEqualTo(1);
    Exchange first = limiter.drain(T + 110).get(0);
    // Room 75 (25 in flight): asked at the 7th.
    letThrough(limiter, "m", 10, T + 120);
    assertThat(asked.get()).isEqualTo(2);

    // The others had 55 (80 with our 25): room 10 with our 35, so every request asks.
    limiter.heard(first, 55, 0);
    limiter.drain(T + 130);
    letThrough(limiter, "m", 1, T + 140);
    assertThat(asked.get()).isEqualTo(3);

    // A limit under 10 asks at its first request after each exchange.
    letThrough(limiter, "tiny", 3, T + 150);
    assertThat(asked.get()).isEqualTo(4);
  }
}
