package dev.idemgate.provider;

import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.support.AcquirerProcess;
import dev.idemgate.support.ClientHistory;
import dev.idemgate.support.ExactlyOnceChecker;
import dev.idemgate.support.FaultProxy;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayPostgres;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;

/**
 * A gateway in this JVM with {@code provider: http}, talking through a {@link FaultProxy} to an acquirer
 * in its own process with {@code --dedup off}: the acquirer charges every request it gets, so any
 * second provider call the gateway made would show as a second charge.
 *
 * <p>The gateway gets a PostgreSQL of its own ({@link ThrowawayPostgres}). On the shared database, the
 * recovery of any other gateway running at the same time (another test run, another provider) would
 * take this gateway's pending records, ask its own provider, which never saw them, and release them:
 * the next retry would then charge again. That is a hazard of sharing one database between gateways
 * with different providers, not of one deployment, and these tests are about the provider path.
 */
abstract class ProviderFaultFixture {
  static ThrowawayPostgres pg;
  static AcquirerProcess acquirer;
  static FaultProxy proxy;
  static TestGateway gateway;
  static Http http;

  ClientHistory history;

  /** Starts everything; {@code providerTimeout} as in IDEMGATE_PROVIDER_TIMEOUT, {@code acquirerEnv} for the acquirer process. */
  static void startAll(String providerTimeout, Map<String, String> acquirerEnv) {
    pg = ThrowawayPostgres.start();
    acquirer = AcquirerProcess.start(false, 0, acquirerEnv);
    proxy = FaultProxy.start("127.0.0.1", acquirer.port());
    // Recovery looks often and inquires soon, so a pending payment settles within a test.
    gateway = TestGateway.start(Map.of("IDEMGATE_PG_URL", pg.url(), "IDEMGATE_PROVIDER", "http",
        "IDEMGATE_PROVIDER_URL", proxy.httpUrl(), "IDEMGATE_PROVIDER_TIMEOUT", providerTimeout, "IDEMGATE_LEASE", "5s",
        "IDEMGATE_RECOVERY_INTERVAL", "200ms", "IDEMGATE_RECOVERY_BACKOFF", "5s,300ms,600ms"));
    http = new Http();
  }

  @AfterAll
  static void stopAll() {
    if (http != null) {
      http.close();
    }
    if (gateway != null) {
      gateway.close();
    }
    if (proxy != null) {
      proxy.close();
    }
    if (acquirer != null) {
      acquirer.close();
    }
    if (pg != null) {
      pg.close();
    }
  }

  @BeforeEach
  void newHistory() {
    history = new ClientHistory();
    proxy.pass();
  }

  Http.Reply pay(String key, JsonObject body) {
    return history.pay(http, gateway.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A, key, body);
  }

  /**
   * Retries {@code key} until the answer is no longer 202 pending (recovery has asked the acquirer),
   * and returns that answer; every retry goes into the history.
   */
  Http.Reply awaitSettled(String key, JsonObject body, Duration limit) {
    long deadline = System.nanoTime() + limit.toNanos();
    Http.Reply reply = pay(key, body);
    while (reply != null && reply.status() == 202 && System.nanoTime() < deadline) {
      try {
        Thread.sleep(200);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError(e);
      }
      reply = pay(key, body);
    }
    return reply;
  }

  /** What the acquirer logged for the provider key of merchant A's {@code key}. */
  static JsonObject acquirerLog(String key) {
    return acquirer.charges(ProviderKeys.of(TestGateway.MERCHANT_A, key));
  }

  /**
   * The checker over this test's history, the acquirer's log and the ledger rows of this history's keys.
   * The acquirer serves every test of the class, so its log is narrowed to this history's provider keys.
   */
  /** Like {@link #check()}, with every charge the acquirer made: for a class whose only test is this one, so orphans count. */
  ExactlyOnceChecker.Report checkEveryCharge() {
    ExactlyOnceChecker.Ledger ledger = ExactlyOnceChecker.Ledger.load(pg.url(), history.ops());
    return ExactlyOnceChecker.check(history.ops(), ExactlyOnceChecker.charges(acquirer.allCharges()), ledger);
  }

  ExactlyOnceChecker.Report check() {
    ExactlyOnceChecker.Ledger ledger = ExactlyOnceChecker.Ledger.load(pg.url(), history.ops());
    return ExactlyOnceChecker.check(history.ops(),
        ExactlyOnceChecker.chargesOf(ExactlyOnceChecker.charges(acquirer.allCharges()), history.ops(), ledger), ledger);
  }
}
