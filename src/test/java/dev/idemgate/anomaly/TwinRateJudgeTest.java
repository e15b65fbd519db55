package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The statistical judge on generated traffic with fixed seeds: fast, deterministic, and measuring
 * the figures docs/anomalies.md quotes (detection delay, false-positive rate).
 */
class TwinRateJudgeTest {
  private static final int HEALTHY_CLIENTS_PER_MERCHANT = 20;
  /** Healthy clients still make real twins now and then (a customer buying the same thing twice). */
  private static final double HEALTHY_MAX_RATE = 0.01;

  @Test
  @DisplayName("a client retrying with new keys 20% of the time is flagged within 150 of its requests, 95% of the time within 60")
  void flagsTwentyPercentClientQuickly() {
    int runs = 500;
    int[] delays = new int[runs];
    for (int seed = 0; seed < runs; seed++) {
      delays[seed] = requestsUntilFlagged(seed, 0.20, 2_000);
    }
    Arrays.sort(delays);
    System.out.printf("detection delay at 20%% twins over %d runs: median %d, p95 %d, max %d requests%n",
        runs, delays[runs / 2], delays[runs * 95 / 100], delays[runs - 1]);
    assertThat(delays[0]).as("never flagged before the minimum sample").isGreaterThanOrEqualTo(31);
    assertThat(delays[runs * 95 / 100]).isLessThanOrEqualTo(60);
    assertThat(delays[runs - 1]).isLessThanOrEqualTo(150);
  }

  @Test
  @DisplayName("a client retrying with new keys 5% of the time is flagged too, later")
  void flagsFivePercentClient() {
    int runs = 200;
    int[] delays = new int[runs];
    for (int seed = 0; seed < runs; seed++) {
      delays[seed] = requestsUntilFlagged(10_000 + seed, 0.05, 5_000);
    }
    Arrays.sort(delays);
    System.out.printf("detection delay at 5%% twins over %d runs: median %d, p95 %d, max %d requests%n",
        runs, delays[runs / 2], delays[runs * 95 / 100], delays[runs - 1]);
    assertThat(delays[runs - 1]).isLessThan(5_000);
  }

  @Test
  @DisplayName("healthy clients over a long run are flagged less than 0.1% of the time")
  void healthyClientsAreRarelyFlagged() {
    int merchants = 50;
    int paymentsPerClient = 5_000;
    TwinRateJudge judge = new TwinRateJudge(TwinRateJudge.Settings.defaults());
    SplittableRandom random = new SplittableRandom(42);
    long observations = 0;
    long flagEvents = 0;
    long flaggedObservations = 0;
    java.util.Set<String> everFlagged = new java.util.HashSet<>();
    for (int m = 0; m < merchants; m++) {
      String merchant = "m" + m;
      double[] rates = new double[HEALTHY_CLIENTS_PER_MERCHANT];
      int[] left = new int[HEALTHY_CLIENTS_PER_MERCHANT];
      for (int c = 0; c < rates.length; c++) {
        rates[c] = random.nextDouble() * HEALTHY_MAX_RATE;
        left[c] = paymentsPerClient;
      }
      int remaining = rates.length * paymentsPerClient;
      boolean[] flagged = new boolean[rates.length];
      while (remaining > 0) {
        int c = random.nextInt(rates.length);
        if (left[c] == 0) {
          continue;
        }
        left[c]--;
        remaining--;
        TwinRateJudge.Change change = judge.record(merchant, "c" + c, random.nextDouble() < rates[c], observations);
        observations++;
        if (change instanceof TwinRateJudge.Change.Flagged) {
          flagEvents++;
          flagged[c] = true;
          everFlagged.add(merchant + "/c" + c);
        } else if (change instanceof TwinRateJudge.Change.Cleared) {
          flagged[c] = false;
        }
        if (flagged[c]) {
          flaggedObservations++;
        }
      }
    }
    int clients = merchants * HEALTHY_CLIENTS_PER_MERCHANT;
    double clientRate = everFlagged.size() / (double) clients;
    double observationRate = flaggedObservations / (double) observations;
    System.out.printf("false positives: %d of %d healthy clients ever flagged (%.4f%%), %d flag events, "
        + "%d of %d payments judged while flagged (%.5f%%)%n", everFlagged.size(), clients, 100 * clientRate,
        flagEvents, flaggedObservations, observations, 100 * observationRate);
    assertThat(observations).isEqualTo((long) clients * paymentsPerClient);
    assertThat(clientRate).isLessThan(0.001);
    assertThat(observationRate).isLessThan(0.001);
  }

  @Test
  @DisplayName("a flagged client that stops making twins is cleared, and the flag does not flap")
  void flagClearsWhenClientRecovers() {
    TwinRateJudge judge = new TwinRateJudge(TwinRateJudge.Settings.defaults());
    SplittableRandom random = new SplittableRandom(7);
    List<String> transitions = new ArrayList<>();
    for (int i = 0; i < 6_000; i++) {
      double rate = i < 1_000 ? 0.2 : 0.002;
      TwinRateJudge.Change change = judge.record("m", "bad", random.nextDouble() < rate, i);
      judge.record("m", "good", random.nextDouble() < 0.002, i);
      if (change instanceof TwinRateJudge.Change.Flagged) {
        transitions.add("flagged@" + i);
      } else if (change instanceof TwinRateJudge.Change.Cleared) {
        transitions.add("cleared@" + i);
      }
    }
    System.out.println("recovering client transitions: " + transitions);
    assertThat(transitions).hasSize(2);
    assertThat(transitions.get(0)).startsWith("flagged@");
    assertThat(transitions.get(1)).startsWith("cleared@");
    assertThat(judge.flaggedCount()).isZero();
  }

  @Test
  @DisplayName("when every client of a merchant duplicates, the capped reference still flags them")
  void everyClientDuplicatingIsStillFlagged() {
    TwinRateJudge judge = new TwinRateJudge(TwinRateJudge.Settings.defaults());
    SplittableRandom random = new SplittableRandom(3);
    for (int i = 0; i < 3_000; i++) {
      judge.record("m", "c" + (i % 5), random.nextDouble() < 0.25, i);
    }
    assertThat(judge.flaggedCount()).isEqualTo(5);
    assertThat(judge.standings("m")).allSatisfy(s -> assertThat(s.referenceRate()).isLessThanOrEqualTo(0.05));
  }

  @Test
  @DisplayName("clients past the per-merchant limit share one bucket, so memory and the admin view stay bounded")
  void clientCardinalityIsBounded() {
    TwinRateJudge.Settings base = TwinRateJudge.Settings.defaults();
    TwinRateJudge judge = new TwinRateJudge(new TwinRateJudge.Settings(base.halfLife(), base.merchantHalfLife(),
        base.minSample(), base.evidenceThreshold(), base.floorRate(), base.capRate(), base.minExcess(),
        base.priorTwins(), base.priorPayments(), 10));
    for (int i = 0; i < 500; i++) {
      judge.record("m", "client-" + i, false, i);
    }
    assertThat(judge.standings("m")).hasSize(10)
        .anySatisfy(s -> assertThat(s.client()).isEqualTo(TwinRateJudge.OVERFLOW_CLIENT));
    assertThat(judge.standings("other-merchant")).isEmpty();
  }

  @Test
  @DisplayName("a new client of a full merchant takes the place of one idle for a merchant half-life, never a flagged one's")
  void idleClientsMakeRoom() {
    TwinRateJudge.Settings base = TwinRateJudge.Settings.defaults();
    TwinRateJudge judge = new TwinRateJudge(new TwinRateJudge.Settings(base.halfLife(), 100,
        base.minSample(), base.evidenceThreshold(), base.floorRate(), base.capRate(), base.minExcess(),
        base.priorTwins(), base.priorPayments(), 3));
    judge.record("m", "old-sdk", false, 0);
    judge.record("m", "busy", false, 1);
    judge.record("m", "newcomer-1", false, 2);
    assertThat(names(judge)).containsExactlyInAnyOrder("old-sdk", "busy", TwinRateJudge.OVERFLOW_CLIENT);

    for (int i = 0; i < 100; i++) {
      judge.record("m", "busy", false, 3 + i);
    }
    judge.record("m", "newcomer-2", false, 200);
    assertThat(names(judge)).as("old-sdk idle for 100 payments").contains("newcomer-2", "busy").doesNotContain("old-sdk");

    // A flagged client keeps its place however idle it is.
    for (int i = 0; i < 60; i++) {
      judge.record("m", "busy", true, 300 + i);
    }
    assertThat(judge.standings("m")).anySatisfy(s -> assertThat(s.client().equals("busy") && s.flagged()).isTrue());
    for (int i = 0; i < 200; i++) {
      judge.record("m", "newcomer-2", false, 400 + i);
    }
    judge.record("m", "newcomer-3", false, 700);
    assertThat(names(judge)).contains("busy", "newcomer-2").doesNotContain("newcomer-3");
  }

  private static List<String> names(TwinRateJudge judge) {
    return judge.standings("m").stream().map(TwinRateJudge.ClientStanding::client).toList();
  }

  @Test
  @DisplayName("the Chernoff statistic is the Bernoulli KL divergence, zero at the reference")
  void klDivergence() {
    assertThat(TwinRateJudge.klBernoulli(0.01, 0.01)).isEqualTo(0.0, org.assertj.core.data.Offset.offset(1e-12));
    assertThat(TwinRateJudge.klBernoulli(0.2, 0.005)).isCloseTo(0.5633, org.assertj.core.data.Offset.offset(1e-3));
    assertThat(TwinRateJudge.klBernoulli(0, 0.5)).isCloseTo(Math.log(2), org.assertj.core.data.Offset.offset(1e-12));
  }

  /**
   * A merchant with healthy clients and one client making twins at {@code badRate}, interleaved at
   * random; returns how many of the bad client's requests it took to flag it.
   */
  private static int requestsUntilFlagged(long seed, double badRate, int limit) {
    TwinRateJudge judge = new TwinRateJudge(TwinRateJudge.Settings.defaults());
    SplittableRandom random = new SplittableRandom(seed);
    double[] healthy = new double[HEALTHY_CLIENTS_PER_MERCHANT];
    for (int c = 0; c < healthy.length; c++) {
      healthy[c] = random.nextDouble() * HEALTHY_MAX_RATE;
    }
    // The merchant has history before the bad client shows up.
    for (int i = 0; i < 2_000; i++) {
      int c = random.nextInt(healthy.length);
      judge.record("m", "h" + c, random.nextDouble() < healthy[c], i);
    }
    int badRequests = 0;
    for (long t = 2_000; badRequests < limit; t++) {
      int pick = random.nextInt(healthy.length + 1);
      if (pick == healthy.length) {
        badRequests++;
        if (judge.record("m", "bad", random.nextDouble() < badRate, t) instanceof TwinRateJudge.Change.Flagged) {
          return badRequests;
        }
      } else {
        judge.record("m", "h" + pick, random.nextDouble() < healthy[pick], t);
      }
    }
    return limit;
  }
}
