package dev.idemgate.anomaly;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.payment.PaymentRequest;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * Generated checkout traffic through the real fingerprint, the twin window and the judge (Redis's part
 * is replayed by an in-memory window with the same rule, to run a million payments in seconds).
 * The hard case for false positives: no merchant_reference, a short price list and returning
 * customers, so that legitimately similar payments do collide now and then.
 */
class GeneratedTrafficTest {
  private static final List<String> FIELDS = DuplicatePayloadPolicy.FINGERPRINT_FIELDS.subList(0, 4);
  private static final long[] PRICES = {499, 999, 1999, 4999, 9999};
  private static final long WINDOW_MS = 600_000;
  /** One merchant-wide payment every 50 ms: 12 000 payments inside one window. */
  private static final long TICK_MS = 50;

  /** The window rule of {@link TwinDetector}: first key per fingerprint for the window; other keys are twins. */
  private static final class Window {
    private final Map<String, Long> firstAt = new HashMap<>();
    private final Map<String, String> firstKey = new HashMap<>();

    boolean isTwin(String fingerprint, String key, long now) {
      Long at = firstAt.get(fingerprint);
      if (at == null || now - at >= WINDOW_MS) {
        firstAt.put(fingerprint, now);
        firstKey.put(fingerprint, key);
        return false;
      }
      return !firstKey.get(fingerprint).equals(key);
    }
  }

  private record Result(long payments, long healthyTwins, long healthyPayments, long healthyPaymentsWhileFlagged,
      Set<String> flaggedHealthy, Map<String, Integer> sloppyFlaggedAfter) {}

  /**
   * One merchant: {@code healthy} checkout clients paying for random customers at random prices, and
   * {@code sloppy} clients that retry 20% of their payments with a new key.
   */
  private static Result run(long seed, int healthy, int sloppy, int paymentsPerClient, int customers) {
    SplittableRandom random = new SplittableRandom(seed);
    TwinRateJudge judge = new TwinRateJudge(TwinRateJudge.Settings.defaults());
    Window window = new Window();
    int clients = healthy + sloppy;
    int[] left = new int[clients];
    java.util.Arrays.fill(left, paymentsPerClient);
    PaymentRequest[] last = new PaymentRequest[clients];
    int[] sent = new int[clients];
    Set<String> flaggedHealthy = new HashSet<>();
    Map<String, Integer> sloppyFlaggedAfter = new HashMap<>();
    long healthyTwins = 0;
    long healthyPayments = 0;
    long whileFlagged = 0;
    boolean[] flagged = new boolean[clients];
    long now = 0;
    long payments = 0;
    int remaining = clients * paymentsPerClient;
    while (remaining > 0) {
      int c = random.nextInt(clients);
      if (left[c] == 0) {
        continue;
      }
      left[c]--;
      remaining--;
      now += TICK_MS;
      payments++;
      boolean isSloppy = c >= healthy;
      String client = (isSloppy ? "sloppy-" : "checkout-") + c;
      PaymentRequest request = isSloppy && last[c] != null && random.nextDouble() < 0.2
          ? last[c]
          : new PaymentRequest(PRICES[random.nextInt(PRICES.length)], "EUR", "tok_cus_" + random.nextInt(customers),
              null, null, null);
      last[c] = request;
      sent[c]++;
      boolean twin = window.isTwin(PaymentTwins.fingerprint(FIELDS, request), "key-" + payments, now);
      if (!isSloppy) {
        healthyPayments++;
        healthyTwins += twin ? 1 : 0;
      }
      TwinRateJudge.Change change = judge.record("m", client, twin, now);
      if (change instanceof TwinRateJudge.Change.Cleared) {
        flagged[c] = false;
      }
      if (change instanceof TwinRateJudge.Change.Flagged) {
        flagged[c] = true;
        if (isSloppy) {
          sloppyFlaggedAfter.putIfAbsent(client, sent[c]);
        } else {
          flaggedHealthy.add(client);
        }
      }
      if (!isSloppy && flagged[c]) {
        whileFlagged++;
      }
    }
    return new Result(payments, healthyTwins, healthyPayments, whileFlagged, flaggedHealthy, sloppyFlaggedAfter);
  }

  @Test
  @DisplayName("checkouts paying the same prices for returning customers are flagged on under 0.1% of their "
      + "payments over a long run; sloppy clients among them are flagged within 150 requests")
  void similarPaymentsAreNotAnomalies() {
    long payments = 0;
    long healthyPayments = 0;
    long healthyTwins = 0;
    int healthyClients = 0;
    int flaggedHealthy = 0;
    long whileFlagged = 0;
    int sloppyClients = 0;
    int worstDelay = 0;
    int merchants = 5;
    for (int merchant = 0; merchant < merchants; merchant++) {
      Result r = run(500 + merchant, 20, 1, 4_000, 200_000);
      whileFlagged += r.healthyPaymentsWhileFlagged();
      payments += r.payments();
      healthyPayments += r.healthyPayments();
      healthyTwins += r.healthyTwins();
      healthyClients += 20;
      flaggedHealthy += r.flaggedHealthy().size();
      sloppyClients += r.sloppyFlaggedAfter().size();
      worstDelay = Math.max(worstDelay, r.sloppyFlaggedAfter().values().stream().mapToInt(Integer::intValue).max().orElse(0));
    }
    double naturalRate = healthyTwins / (double) healthyPayments;
    double falsePositiveRate = whileFlagged / (double) healthyPayments;
    System.out.printf("generated traffic: %d payments, natural twin rate of healthy clients %.3f%%, "
        + "%d of %d healthy clients ever flagged, %d of %d healthy payments judged while flagged (%.4f%%), "
        + "%d of %d sloppy clients flagged, the slowest after %d requests%n",
        payments, 100 * naturalRate, flaggedHealthy, healthyClients, whileFlagged, healthyPayments,
        100 * falsePositiveRate, sloppyClients, merchants, worstDelay);
    assertThat(naturalRate).as("the traffic really has similar payments colliding").isGreaterThan(0.005);
    assertThat(falsePositiveRate).isLessThan(0.001);
    assertThat(sloppyClients).isEqualTo(merchants);
    assertThat(worstDelay).isLessThanOrEqualTo(150);
  }
}
