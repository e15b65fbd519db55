package dev.idemgate.anomaly;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Decides, per merchant and client, whether a client's twin rate is abnormal (docs/anomalies.md).
 *
 * <p>Each client keeps exponentially decayed counts of its payments and twins (an EWMA of its twin
 * rate, half-life {@link Settings#halfLife} of its own payments). On every observation the recent
 * rate is tested one-sided against a reference: the pooled twin rate of the merchant's <em>other</em>
 * clients (slowly decayed, shrunk towards a prior), clamped to [{@link Settings#floorRate},
 * {@link Settings#capRate}]. The test statistic is the Chernoff bound of the binomial tail,
 * {@code n * KL(q || p)}: {@code P(X >= qn | n, p) <= exp(-n KL)}, valid for the non-integer
 * decayed counts. A client is flagged when that bound falls under {@code exp(-evidenceThreshold)}
 * with at least {@link Settings#minSample} recent payments and a rate at least
 * {@link Settings#minExcess} above the reference; the flag clears when the evidence falls to a
 * quarter of the threshold (hysteresis, so a flag does not flap).
 *
 * <p>Thread-safe: every API event loop records into one judge; each merchant's state is guarded by
 * its own lock, held for a few arithmetic operations. Memory is bounded by the merchants (configured
 * API keys) times {@link Settings#maxClientsPerMerchant}. A new client past that takes the place of
 * the client seen least recently, if that one is not flagged and has not paid for
 * {@link Settings#merchantHalfLife} of the merchant's payments; else it shares one bucket. Without
 * that, the first thousand client ids a merchant ever showed (SDK versions, browser user agents)
 * kept their places for good, and every client after them was judged only in the shared bucket.
 */
public final class TwinRateJudge {
  /** The bucket for clients past {@link Settings#maxClientsPerMerchant}. */
  public static final String OVERFLOW_CLIENT = "(other)";

  /**
   * @param halfLife client payments after which an observation weighs half (the EWMA of the rate)
   * @param merchantHalfLife merchant payments after which an observation weighs half in the pooled rate
   * @param minSample decayed payments a client needs before it can be flagged
   * @param evidenceThreshold {@code -ln} of the largest tail probability that flags (13.8 = 1e-6)
   * @param floorRate the reference never goes below this: a twin now and then is not an anomaly
   * @param capRate the reference never goes above this: a merchant whose every client duplicates still gets flags
   * @param minExcess the recent rate must exceed the reference by at least this much (absolute)
   * @param priorTwins pseudo-twins of the prior that shrinks the pooled rate of a quiet merchant
   * @param priorPayments pseudo-payments of that prior
   * @param maxClientsPerMerchant clients tracked per merchant before new ones share {@link #OVERFLOW_CLIENT}
   */
  public record Settings(double halfLife, double merchantHalfLife, double minSample, double evidenceThreshold,
      double floorRate, double capRate, double minExcess, double priorTwins, double priorPayments,
      int maxClientsPerMerchant) {

    public static Settings defaults() {
      return new Settings(400, 20_000, 30, 13.8, 0.005, 0.05, 0.02, 0.5, 500, 1_000);
    }
  }

  /** One client's standing, as the admin view shows it. */
  public record ClientStanding(String merchant, String client, long payments, long twins,
      double recentPayments, double recentRate, double referenceRate, double evidence,
      boolean flagged, long flaggedAtMillis) {}

  /** What one observation changed. */
  public sealed interface Change {
    /** Nothing to report. */
    record None() implements Change {}

    /** The client has just been flagged. */
    record Flagged(ClientStanding standing) implements Change {}

    /** The client's flag has just cleared. */
    record Cleared(ClientStanding standing) implements Change {}
  }

  private static final Change NONE = new Change.None();
  /** The order of {@link #standings}: flagged first, then the most evidence first. */
  private static final Comparator<ClientStanding> ORDER =
      Comparator.comparing((ClientStanding s) -> !s.flagged()).thenComparing(s -> -s.evidence());

  /** A standing and when {@link #shown} met it, ties going to the one met first. */
  private record Ranked(ClientStanding standing, long met) {}

  private static final Comparator<Ranked> RANKED =
      Comparator.comparing(Ranked::standing, ORDER).thenComparingLong(Ranked::met);

  private final Settings settings;
  private final double clientDecay;
  private final double merchantDecay;
  private final Map<String, MerchantState> merchants = new ConcurrentHashMap<>();

  public TwinRateJudge(Settings settings) {
    this.settings = settings;
    this.clientDecay = Math.pow(0.5, 1.0 / settings.halfLife());
    this.merchantDecay = Math.pow(0.5, 1.0 / settings.merchantHalfLife());
  }

  public Settings settings() {
    return settings;
  }

  /**
   * Records one payment of {@code client} at {@code merchant}: a twin of an earlier payment under
   * another key, or not. Same-key retries and declared repeats must not be recorded at all.
   */
  public Change record(String merchant, String client, boolean twin, long nowMillis) {
    MerchantState m = merchants.computeIfAbsent(merchant, k -> new MerchantState());
    synchronized (m) {
      ClientState c = m.client(client, settings.maxClientsPerMerchant(), (long) settings.merchantHalfLife());
      double x = twin ? 1 : 0;
      // Bring the client's share of the merchant's slow totals to the merchant's clock, then add
      // this payment to both, so that "the others" is the merchant minus this client at one moment.
      double age = Math.pow(merchantDecay, m.tick - c.shareTick);
      c.shareN = c.shareN * age * merchantDecay + 1;
      c.shareT = c.shareT * age * merchantDecay + x;
      m.tick++;
      c.shareTick = m.tick;
      m.slowN = m.slowN * merchantDecay + 1;
      m.slowT = m.slowT * merchantDecay + x;

      c.n = c.n * clientDecay + 1;
      c.t = c.t * clientDecay + x;
      c.payments++;
      if (twin) {
        c.twins++;
      }
      double othersN = Math.max(0, m.slowN - c.shareN);
      double othersT = Math.max(0, Math.min(othersN, m.slowT - c.shareT));
      double pooled = (othersT + settings.priorTwins()) / (othersN + settings.priorPayments());
      c.reference = Math.min(settings.capRate(), Math.max(settings.floorRate(), pooled));
      double q = c.t / c.n;
      c.evidence = q > c.reference ? c.n * klBernoulli(q, c.reference) : 0;

      if (!c.flagged && twin && c.n >= settings.minSample() && q >= c.reference + settings.minExcess()
          && c.evidence >= settings.evidenceThreshold()) {
        c.flagged = true;
        c.flaggedAt = nowMillis;
        m.flagged++;
        return new Change.Flagged(standing(merchant, c));
      }
      if (c.flagged && c.evidence < settings.evidenceThreshold() / 4) {
        c.flagged = false;
        m.flagged--;
        return new Change.Cleared(standing(merchant, c));
      }
      return NONE;
    }
  }

  /** Clients flagged right now, over all merchants. */
  public int flaggedCount() {
    int total = 0;
    for (MerchantState m : merchants.values()) {
      synchronized (m) {
        total += m.flagged;
      }
    }
    return total;
  }

  /** The standing of every client (of one merchant, or all when {@code merchant} is null), flagged first. */
  public List<ClientStanding> standings(String merchant) {
    List<ClientStanding> out = new ArrayList<>();
    merchants.forEach((id, m) -> {
      if (merchant == null || merchant.equals(id)) {
        synchronized (m) {
          m.clients.forEach((client, c) -> out.add(standing(id, c)));
        }
      }
    });
    out.sort(ORDER);
    return out;
  }

  /**
   * What the admin view shows of {@link #standings}: every flagged client, and the first {@code limit}
   * clients.
   */
  public record Shown(List<ClientStanding> flagged, List<ClientStanding> clients) {}

  /**
   * The lists the admin view takes from {@link #standings}, the same, without building and sorting a
   * standing for every client of every merchant (up to 1 000 per merchant): the flagged clients are
   * all shown, so they are sorted; of the others only the best {@code limit} met so far are kept, in a
   * bounded heap. O(clients × log limit) time, O(flagged + limit) memory.
   */
  public Shown shown(String merchant, int limit) {
    int rows = Math.max(0, limit);
    List<ClientStanding> flagged = new ArrayList<>();
    // The worst kept at the head. Each carries when it was met: standings' sort is stable, so of two
    // clients with equal evidence (every quiet client has 0) the one met first comes first.
    PriorityQueue<Ranked> best = new PriorityQueue<>(Math.max(1, rows), RANKED.reversed());
    long[] met = {0};
    merchants.forEach((id, m) -> {
      if (merchant == null || merchant.equals(id)) {
        synchronized (m) {
          for (ClientState c : m.clients.values()) {
            long order = met[0]++;
            if (c.flagged) {
              flagged.add(standing(id, c));
            } else if (best.size() < rows) {
              best.add(new Ranked(standing(id, c), order));
            } else if (rows > 0 && Double.compare(-c.evidence, -best.peek().standing().evidence()) < 0) {
              // Only more evidence displaces the worst kept: on a tie, the one met earlier stays first.
              best.poll();
              best.add(new Ranked(standing(id, c), order));
            }
          }
        }
      }
    });
    flagged.sort(ORDER);
    List<Ranked> others = new ArrayList<>(best);
    others.sort(RANKED);
    List<ClientStanding> clients = new ArrayList<>(flagged.subList(0, Math.min(rows, flagged.size())));
    for (int i = 0; i < others.size() && clients.size() < rows; i++) {
      clients.add(others.get(i).standing());
    }
    return new Shown(flagged, clients);
  }

  private static ClientStanding standing(String merchant, ClientState c) {
    return new ClientStanding(merchant, c.id, c.payments, c.twins, c.n, c.n == 0 ? 0 : c.t / c.n, c.reference,
        c.evidence, c.flagged, c.flagged ? c.flaggedAt : 0);
  }

  /** Kullback-Leibler divergence of Bernoulli(q) from Bernoulli(p), for 0 < p < 1. */
  static double klBernoulli(double q, double p) {
    double a = q <= 0 ? 0 : q * Math.log(q / p);
    double b = q >= 1 ? 0 : (1 - q) * Math.log((1 - q) / (1 - p));
    return a + b;
  }

  private static final class MerchantState {
    long tick;
    double slowN;
    double slowT;
    int flagged;
    /**
     * No client can be evicted before this tick: the last scan's least recently seen client was
     * seen then less idleTicks ago (a client's last tick only grows). So a merchant full of active
     * clients costs one scan per idle period, not one per payment of a client past the limit.
     */
    long noEvictionBefore;
    final Map<String, ClientState> clients = new HashMap<>();

    ClientState client(String id, int max, long idleTicks) {
      ClientState c = clients.get(id);
      if (c != null) {
        return c;
      }
      boolean room = clients.size() < max - 1 || evictIdle(idleTicks);
      return clients.computeIfAbsent(room ? id : OVERFLOW_CLIENT, ClientState::new);
    }

    /**
     * Frees the place of the client seen least recently, if it is not flagged and has not paid for
     * {@code idleTicks} of the merchant's payments. A scan of at most maxClientsPerMerchant entries,
     * only for a new client of a full merchant, and at most once per {@code idleTicks} while none
     * can be freed.
     */
    private boolean evictIdle(long idleTicks) {
      if (tick < noEvictionBefore) {
        return false;
      }
      ClientState oldest = null;
      for (ClientState c : clients.values()) {
        if (!c.flagged && !c.id.equals(OVERFLOW_CLIENT) && (oldest == null || c.shareTick < oldest.shareTick)) {
          oldest = c;
        }
      }
      if (oldest == null || tick - oldest.shareTick < idleTicks) {
        // A flagged client that clears could be evicted earlier: it waits at most idleTicks more.
        noEvictionBefore = (oldest == null ? tick : oldest.shareTick) + idleTicks;
        return false;
      }
      clients.remove(oldest.id);
      return true;
    }
  }

  private static final class ClientState {
    final String id;
    double n;
    double t;
    double shareN;
    double shareT;
    long shareTick;
    long payments;
    long twins;
    double reference;
    double evidence;
    boolean flagged;
    long flaggedAt;

    ClientState(String id) {
      this.id = id;
    }
  }
}
