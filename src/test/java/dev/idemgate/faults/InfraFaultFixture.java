package dev.idemgate.faults;

import dev.idemgate.support.AcquirerProcess;
import dev.idemgate.support.ClientHistory;
import dev.idemgate.support.ExactlyOnceChecker;
import dev.idemgate.support.FaultProxy;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

/**
 * Shared set-up of the infrastructure fault scenarios: an acquirer in its own process with
 * {@code --dedup off} (it charges every request it gets, so only the gateway's own discipline
 * prevents a double charge), short leases and a fast recovery so that a scenario settles in
 * seconds, and the exactly-once checker at the end.
 */
final class InfraFaultFixture {
  /** A fixed seed per run, printed, so that a failing randomized run can be replayed. */
  static final long SEED = Long.getLong("idemgate.faults.seed", System.nanoTime());

  private InfraFaultFixture() {}

  /** A gateway whose Redis is behind the proxy, with a short Redis deadline, and {@code settings} (name, value, …). */
  static TestGateway gatewayThrough(FaultProxy proxy, String... settings) {
    Map<String, String> env = new HashMap<>(Map.of("IDEMGATE_REDIS_URL", "redis://127.0.0.1:" + proxy.port(),
        "IDEMGATE_REDIS_TIMEOUT", "200ms"));
    for (int i = 0; i + 1 < settings.length; i += 2) {
      env.put(settings[i], settings[i + 1]);
    }
    return TestGateway.start(env);
  }

  /** Runs {@code fault} on its own thread after {@code ms}, while the test drives the workload. */
  static Thread after(long ms, Runnable fault) {
    Thread t = new Thread(() -> {
      try {
        Thread.sleep(ms);
        fault.run();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, "fault");
    t.start();
    return t;
  }

  static Random random() {
    System.out.println("fault scenario seed: " + SEED + " (-Didemgate.faults.seed=" + SEED + " replays it)");
    return new Random(SEED);
  }

  /** Gateway settings for fault scenarios, against {@code acquirer}. */
  static Map<String, String> gatewayEnv(AcquirerProcess acquirer) {
    Map<String, String> env = new HashMap<>();
    env.put("IDEMGATE_PROVIDER", "http");
    env.put("IDEMGATE_PROVIDER_URL", acquirer.url());
    env.put("IDEMGATE_PROVIDER_TIMEOUT", "1s");
    env.put("IDEMGATE_LEASE", "3s");
    env.put("IDEMGATE_STORE_TIMEOUT", "1s");
    env.put("IDEMGATE_REDIS_TIMEOUT", "300ms");
    env.put("IDEMGATE_RECOVERY_INTERVAL", "200ms");
    env.put("IDEMGATE_RECOVERY_BACKOFF", "5s,300ms,600ms,1s");
    return env;
  }

  /** The checker over one scenario's history, its acquirer's whole log, and the ledger in {@code pgUrl}. */
  static ExactlyOnceChecker.Report check(ClientHistory history, AcquirerProcess acquirer, String pgUrl) {
    ExactlyOnceChecker.Ledger ledger = ExactlyOnceChecker.Ledger.load(pgUrl, history.ops());
    ExactlyOnceChecker.Report report = ExactlyOnceChecker.check(history.ops(),
        ExactlyOnceChecker.charges(acquirer.allCharges()), ledger);
    System.out.println(ExactlyOnceChecker.Report.header());
    System.out.println(report);
    return report;
  }

  static Workload workload(Http http, ClientHistory history, TestGateway gateway) {
    return new Workload(http, history, TestGateway.MERCHANT_A, TestGateway.KEY_A, gateway::apiPort);
  }
}
