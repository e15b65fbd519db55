package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class FellegiSunterTest {

  @Test
  @DisplayName("EM recovers m, u and the match share from unlabelled pattern counts")
  void recoversParameters() {
    int[] levels = {3, 2, 3};
    double p = 0.05;
    double[][] m = {{0.85, 0.1, 0.05}, {0.98, 0.02}, {0.7, 0.25, 0.05}};
    double[][] u = {{0.01, 0.04, 0.95}, {0.6, 0.4}, {0.2, 0.3, 0.5}};
    Random random = new Random(7);
    Map<String, long[]> counts = new HashMap<>();
    Map<String, int[]> keys = new HashMap<>();
    for (int i = 0; i < 200_000; i++) {
      double[][] dist = random.nextDouble() < p ? m : u;
      int[] pattern = new int[levels.length];
      for (int k = 0; k < levels.length; k++) {
        double draw = random.nextDouble();
        int l = 0;
        while (l < levels[k] - 1 && draw >= dist[k][l]) {
          draw -= dist[k][l];
          l++;
        }
        pattern[k] = l;
      }
      String key = java.util.Arrays.toString(pattern);
      keys.putIfAbsent(key, pattern);
      counts.computeIfAbsent(key, x -> new long[1])[0]++;
    }
    List<FellegiSunter.Pattern> patterns = new ArrayList<>();
    counts.forEach((key, n) -> patterns.add(new FellegiSunter.Pattern(keys.get(key), n[0])));

    double[][] vague = {{0.6, 0.2, 0.2}, {0.8, 0.2}, {0.6, 0.2, 0.2}};
    FellegiSunter.Model model = FellegiSunter.fit(levels, patterns, vague, vague, 20, 0.1);

    assertThat(model.matchShare()).isCloseTo(p, within(0.01));
    for (int k = 0; k < levels.length; k++) {
      for (int l = 0; l < levels[k]; l++) {
        assertThat(model.m()[k][l]).as("m[%d][%d]", k, l).isCloseTo(m[k][l], within(0.04));
        assertThat(model.u()[k][l]).as("u[%d][%d]", k, l).isCloseTo(u[k][l], within(0.02));
      }
    }
    assertThat(model.posterior(new int[] {0, 0, 0})).isGreaterThan(0.95);
    assertThat(model.posterior(new int[] {2, 1, 2})).isLessThan(0.01);
    assertThat(model.weight(new int[] {0, 0, 0})).isGreaterThan(model.weight(new int[] {1, 0, 0}));
  }

  @Test
  @DisplayName("a lone pair that disagrees on amount is not made a match by EM on too little data")
  void priorOnTinyData() {
    double[][] prior = {{0.9, 0.04, 0.03, 0.03}, {0.97, 0.03}, {0.9, 0.05, 0.05}, {0.75, 0.2, 0.05}};
    FellegiSunter.Model model = FellegiSunter.fit(new int[] {4, 2, 3, 3},
        List.of(new FellegiSunter.Pattern(new int[] {3, 0, 0, 0}, 1)), prior,
        new double[][] {{0.01, 0.01, 0.04, 0.94}, {0.6, 0.4}, {0.9, 0.05, 0.05}, {0.3, 0.5, 0.2}}, 20, 0.5);
    assertThat(model.posterior(new int[] {3, 0, 0, 0})).isLessThan(0.5);
  }

  /** The prior of the reconciliation's four fields: amount, currency, merchant, time. */
  private static final double[][] PRIOR_M = {{0.9, 0.04, 0.03, 0.03}, {0.97, 0.03}, {0.95, 0.05}, {0.75, 0.2, 0.05}};
  private static final double[][] PRIOR_U = {{0.01, 0.01, 0.04, 0.94}, {0.6, 0.4}, {0.95, 0.05}, {0.3, 0.5, 0.2}};
  private static final int[] LEVELS = {4, 2, 2, 3};

  private static FellegiSunter.Pattern pattern(long count, int... levels) {
    return new FellegiSunter.Pattern(levels, count);
  }

  @Test
  @DisplayName("5 settlement rows and 5 payments of one merchant, all agreeing on everything but amount (25 pairs): "
      + "the match share stays within the 5 matches one-to-one matching allows, and only an exact amount is believed")
  void theShareIsBoundedByWhatOneToOneMatchingAllows() {
    // Amounts 1925, 1962, 2036, 2073 and 2110, settled minutes after their charges: 5 exact pairs,
    // 10 within 5% (level 2) and 10 further apart.
    List<FellegiSunter.Pattern> patterns = List.of(pattern(5, 0, 0, 0, 0), pattern(10, 2, 0, 0, 0), pattern(10, 3, 0, 0, 0));

    FellegiSunter.Model model = FellegiSunter.fit(LEVELS, patterns, PRIOR_M, PRIOR_U, 20, 5 / 25.0);

    assertThat(model.matchShare()).as("at most 5 of the 25 pairs can be matches").isLessThanOrEqualTo(5 / 25.0);
    assertThat(model.posterior(new int[] {0, 0, 0, 0})).isGreaterThan(0.9);
    assertThat(model.posterior(new int[] {2, 0, 0, 0})).isLessThan(0.2);
    assertThat(model.posterior(new int[] {3, 0, 0, 0})).isLessThan(0.05);
  }

  @Test
  @DisplayName("one settlement row among 147 payments of a busy merchant, one of them of the row's exact amount: "
      + "EM does not collapse the match share to nothing, and the exact pair stays believed")
  void aLoneExactPairAmongManyIsNotExplainedAway() {
    List<FellegiSunter.Pattern> patterns = List.of(pattern(1, 0, 0, 0, 0), pattern(146, 3, 0, 0, 0));

    FellegiSunter.Model model = FellegiSunter.fit(LEVELS, patterns, PRIOR_M, PRIOR_U, 20, 1 / 147.0);

    assertThat(model.matchShare()).as("one match in 147 pairs is possible").isGreaterThan(1 / 147.0 / 10);
    // One pair in 147 is a match before looking at it; agreeing on the amount makes it a strong
    // candidate (it competes with nothing alike), not a certainty.
    assertThat(model.posterior(new int[] {0, 0, 0, 0})).isGreaterThan(0.05);
    assertThat(model.likelihoodRatio(new int[] {0, 0, 0, 0})).isGreaterThan(1_000 * model.likelihoodRatio(new int[] {3, 0, 0, 0}));
    assertThat(model.posterior(new int[] {3, 0, 0, 0})).isLessThan(0.001);
  }

  @Test
  @DisplayName("no candidate pairs give a model without iterations, not a failure")
  void empty() {
    FellegiSunter.Model model = FellegiSunter.fit(new int[] {2, 2}, List.of(), new double[][] {{0.9, 0.1}, {0.9, 0.1}},
        new double[][] {{0.5, 0.5}, {0.5, 0.5}}, 20, 0.1);
    assertThat(model.iterations()).isZero();
  }
}
