package dev.idemgate.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;

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
      if (limiter.tryAcquire(merchant, at)) {
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
  @DisplayName("merchants are counted apart, and a merchant without a limit is never refused")
  void merchantsApart() {
    MerchantRateLimiter limiter = limiter(Map.of("small", 3L, "large", 1_000L));

    assertThat(letThrough(limiter, "small", 10, T)).isEqualTo(3);
    assertThat(letThrough(limiter, "large", 10, T)).isEqualTo(10);
    assertThat(letThrough(limiter, "unlimited", 10_000, T)).isEqualTo(10_000);
    assertThat(limiter.drain(T + 50)).extracting(MerchantRateLimiter.Exchange::merchant)
        .containsExactlyInAnyOrder("small", "large");
  }

  @Test
  @DisplayName("what the other instances let through, heard from Redis, counts against the limit here")
  void fleetCountsAgainstTheLimit() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 50L));
    assertThat(letThrough(limiter, "m", 10, T + 100)).isEqualTo(10);

    List<MerchantRateLimiter.Exchange> sent = limiter.drain(T + 150);
    assertThat(sent).containsExactly(new MerchantRateLimiter.Exchange("m", T / 1000, 10, 0));
    // While the exchange is in flight its 10 still count here.
    assertThat(letThrough(limiter, "m", 5, T + 160)).isEqualTo(5);
    // Redis: the fleet has 45 this second, ours (10) included.
    limiter.heard(sent.get(0), 45, 0);

    // 45 heard + 5 not yet sent = 50: nothing more this second.
    assertThat(letThrough(limiter, "m", 10, T + 200)).isZero();
  }

  @Test
  @DisplayName("when Redis does not answer, what was sent still counts as this instance's own")
  void unheardStillCounts() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 20L));
    assertThat(letThrough(limiter, "m", 15, T + 100)).isEqualTo(15);

    limiter.unheard(limiter.drain(T + 150).get(0));

    assertThat(letThrough(limiter, "m", 10, T + 200)).isEqualTo(5);
  }

  @Test
  @DisplayName("the last requests of a second are still sent after it ends, as the second before's")
  void lastOfASecondIsStillSent() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 100L));
    letThrough(limiter, "m", 7, T + 100);
    limiter.drain(T + 150);
    letThrough(limiter, "m", 3, T + 980);

    List<MerchantRateLimiter.Exchange> sent = limiter.drain(T + 1_050);
    assertThat(sent).containsExactly(new MerchantRateLimiter.Exchange("m", T / 1000 + 1, 0, 3));
  }

  @Test
  @DisplayName("a late answer for the second before raises that second's count, never this one's")
  void lateAnswerForTheSecondBefore() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 100L));
    letThrough(limiter, "m", 10, T + 900);
    MerchantRateLimiter.Exchange sent = limiter.drain(T + 950).get(0);

    // The answer comes after the second ended: the fleet had 90 in it.
    assertThat(letThrough(limiter, "m", 1, T + 1_000)).isEqualTo(1);
    limiter.heard(sent, 90, 0);

    // At 1.5 s: 90 * 0.5 + 1 = 46 counted, so 54 more.
    assertThat(letThrough(limiter, "m", 100, T + 1_500)).isEqualTo(54);
  }

  @Test
  @DisplayName("a merchant quiet for two seconds is not sent at all, and a wall clock stepping back resets nothing")
  void idleAndClockSteps() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 10L));
    letThrough(limiter, "m", 10, T + 100);
    assertThat(limiter.drain(T + 3_000)).isEmpty();

    assertThat(letThrough(limiter, "m", 10, T + 5_100)).isEqualTo(10);
    assertThat(letThrough(limiter, "m", 10, T + 4_900)).isZero();
  }

  @Test
  @DisplayName("each time a tenth of the limit is let through unsent, an exchange is asked for, once per batch")
  void batchFullAsksForAnExchange() {
    MerchantRateLimiter limiter = limiter(Map.of("m", 100L, "tiny", 3L));
    java.util.concurrent.atomic.AtomicInteger asked = new java.util.concurrent.atomic.AtomicInteger();
    limiter.onBatchFull(asked::incrementAndGet);

    letThrough(limiter, "m", 25, T + 100);
    assertThat(asked.get()).isEqualTo(1);
    limiter.drain(T + 110);
    letThrough(limiter, "m", 10, T + 120);
    assertThat(asked.get()).isEqualTo(2);
    // A limit under 10 asks after every request.
    letThrough(limiter, "tiny", 3, T + 130);
    assertThat(asked.get()).isEqualTo(3);
  }
}
