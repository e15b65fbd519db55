package dev.idemgate.reconciliation;

import java.util.Arrays;
import java.util.List;

/**
 * Fellegi–Sunter record linkage: each candidate pair is compared field by field, giving an
 * agreement level per field, and a pair's evidence of being a match is the product over fields
 * of m/u, where m is the chance of that level among true matches and u among non-matches.
 * m, u and the share p of matches among candidate pairs are not configured: they are estimated
 * by expectation–maximisation (assuming fields independent within each class) from the candidate
 * pairs of the file itself.
 *
 * <p>EM runs on the counts of each distinct agreement pattern, not on the pairs, so its memory
 * and time do not grow with the file: the pairs are counted in PostgreSQL, the model is fitted
 * here and its odds are written back per pattern.
 */
public final class FellegiSunter {
  private static final double FLOOR = 1e-6;
  private static final int MAX_ITERATIONS = 1_000;
  private static final double TOLERANCE = 1e-8;

  private FellegiSunter() {}

  /** How many candidate pairs showed one combination of agreement levels. */
  public record Pattern(int[] levels, long count) {}

  /**
   * A fitted model.
   *
   * @param matchShare p: the share of candidate pairs that are matches
   * @param m per field, per level: P(level | match)
   * @param u per field, per level: P(level | non-match)
   */
  public record Model(double matchShare, double[][] m, double[][] u, int iterations) {
    /** The Fellegi–Sunter weight of a pattern: log2 of m/u summed over fields. */
    public double weight(int[] levels) {
      double w = 0;
      for (int k = 0; k < levels.length; k++) {
        w += Math.log(m[k][levels[k]] / u[k][levels[k]]) / Math.log(2);
      }
      return w;
    }

    /** The likelihood ratio m/u of a pattern: how much more likely it is among matches than among non-matches. */
    public double likelihoodRatio(int[] levels) {
      double ratio = 1;
      for (int k = 0; k < levels.length; k++) {
        ratio *= m[k][levels[k]] / u[k][levels[k]];
      }
      return ratio;
    }

    /** Posterior odds that a pair with this pattern is a match, before looking at its competitors. */
    public double odds(int[] levels) {
      return matchShare / (1 - matchShare) * likelihoodRatio(levels);
    }

    /** P(match | pattern). */
    public double posterior(int[] levels) {
      double o = odds(levels);
      return Double.isInfinite(o) ? 1 : o / (1 + o);
    }
  }

  /**
   * Fits m, u and p by EM, as a maximum a posteriori estimate: {@code priorM} and {@code priorU}
   * count as {@code priorWeight} pairs' worth of evidence, and so does the belief that p is half of
   * {@code maxShare} (half the rows that could have a partner have one). On thousands of pairs the
   * data decides; on a handful, the prior stops EM from declaring two leftovers a match just because
   * they are the only pair there is, or every pair a coincidence.
   *
   * <p>p never exceeds {@code maxShare}. Without that bound, a small file whose pairs differ only in
   * amount (one merchant's five payments of close amounts, 25 pairs) was fitted with p near 1:
   * every pair a match, m the same as u, so that no pair stood out and every row was an orphan. The
   * prior on p is the other side: one exact pair among a busy merchant's 147 was explained away as
   * a coincidence (p near 0), for lack of the matches that would have taught m.
   *
   * @param levelCounts number of agreement levels of each field; level 0 is full agreement
   * @param priorM per field, per level: what m is believed to be before seeing the data
   * @param priorU the same for u
   * @param maxShare the most p can be: when a row and a payment each have one partner at most,
   *     min(rows, payments) / (candidate pairs)
   */
  public static Model fit(int[] levelCounts, List<Pattern> patterns, double[][] priorM, double[][] priorU,
      double priorWeight, double maxShare) {
    int fields = levelCounts.length;
    double total = 0;
    for (Pattern g : patterns) {
      total += g.count();
    }
    double ceiling = clamp(maxShare, FLOOR, 1 - FLOOR);
    double p = Math.min(ceiling, 0.5);
    double[][] m = new double[fields][];
    double[][] u = new double[fields][];
    priorU = priorU.clone();
    for (int k = 0; k < fields; k++) {
      m[k] = priorM[k].clone();
      normalize(m[k]);
      priorU[k] = priorU[k].clone();
      normalize(priorU[k]);
      u[k] = priorU[k].clone();
    }
    if (total == 0) {
      return new Model(p, m, u, 0);
    }
    int iteration = 0;
    double[] w = new double[patterns.size()];
    while (iteration++ < MAX_ITERATIONS) {
      // E: the probability that each pattern's pairs are matches.
      double matched = 0;
      for (int i = 0; i < patterns.size(); i++) {
        int[] levels = patterns.get(i).levels();
        double pm = p;
        double pu = 1 - p;
        for (int k = 0; k < fields; k++) {
          pm *= m[k][levels[k]];
          pu *= u[k][levels[k]];
        }
        w[i] = pm / (pm + pu);
        matched += w[i] * patterns.get(i).count();
      }
      // M: re-estimate p, m and u from the expected classes, with the prior's pseudo-counts.
      double[][] m2 = new double[fields][];
      double[][] u2 = new double[fields][];
      for (int k = 0; k < fields; k++) {
        m2[k] = new double[levelCounts[k]];
        u2[k] = new double[levelCounts[k]];
        for (int l = 0; l < levelCounts[k]; l++) {
          m2[k][l] = priorWeight * priorM[k][l];
          u2[k][l] = priorWeight * priorU[k][l];
        }
      }
      for (int i = 0; i < patterns.size(); i++) {
        Pattern g = patterns.get(i);
        for (int k = 0; k < fields; k++) {
          m2[k][g.levels()[k]] += w[i] * g.count();
          u2[k][g.levels()[k]] += (1 - w[i]) * g.count();
        }
      }
      double share = clamp((matched + priorWeight * ceiling / 2) / (total + priorWeight), FLOOR, ceiling);
      double change = Math.abs(p - share);
      p = share;
      for (int k = 0; k < fields; k++) {
        for (int l = 0; l < levelCounts[k]; l++) {
          m2[k][l] = Math.max(FLOOR, m2[k][l]);
          u2[k][l] = Math.max(FLOOR, u2[k][l]);
        }
        normalize(m2[k]);
        normalize(u2[k]);
        for (int l = 0; l < levelCounts[k]; l++) {
          change = Math.max(change, Math.max(Math.abs(m2[k][l] - m[k][l]), Math.abs(u2[k][l] - u[k][l])));
        }
      }
      m = m2;
      u = u2;
      if (change < TOLERANCE) {
        break;
      }
    }
    return new Model(p, m, u, iteration);
  }

  private static void normalize(double[] v) {
    double sum = Arrays.stream(v).sum();
    for (int i = 0; i < v.length; i++) {
      v[i] /= sum;
    }
  }

  private static double clamp(double x, double lo, double hi) {
    return Math.max(lo, Math.min(hi, x));
  }
}
