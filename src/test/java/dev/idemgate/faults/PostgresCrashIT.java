package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.support.AcquirerProcess;
import dev.idemgate.support.ClientHistory;
import dev.idemgate.support.ExactlyOnceChecker;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayPostgres;
import dev.idemgate.support.Waits;
import java.time.Duration;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** PostgreSQL is the truth: while it is gone nothing may be charged, and after it comes back nothing may be lost. */
class PostgresCrashIT {

  @Test
  @DisplayName("PostgreSQL crashed (immediate stop) and restarted mid-load: 503 store_unavailable with Retry-After and no charge while it is down, then exactly-once holds")
  void postgresCrashAndRestart() throws Exception {
    Random random = InfraFaultFixture.random();
    try (AcquirerProcess acquirer = AcquirerProcess.start(false, 5, Map.of());
         ThrowawayPostgres pg = ThrowawayPostgres.start();
         Http http = new Http()) {
      Map<String, String> env = InfraFaultFixture.gatewayEnv(acquirer);
      env.put("IDEMGATE_PG_URL", pg.url());
      try (TestGateway gateway = TestGateway.start(env)) {
        ClientHistory history = new ClientHistory();
        Workload workload = InfraFaultFixture.workload(http, history, gateway);
        AtomicReference<Http.Reply> duringOutage = new AtomicReference<>();
        String outageKey = Http.newKey();
        Thread faults = InfraFaultFixture.after(1_500, () -> {
          pg.crash();
          Waits.sleep(300);
          duringOutage.set(history.pay(http, gateway.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A, outageKey,
              Http.payment(777, "tok_visa")));
          Waits.sleep(1_500);
          pg.restart();
        });
        workload.run(Duration.ofSeconds(6), 16, 150, 0.05, random);
        faults.join();
        workload.settle(Duration.ofSeconds(40));

        assertThat(duringOutage.get().status()).isEqualTo(503);
        assertThat(duringOutage.get().json().getString("code")).isEqualTo("store_unavailable");
        assertThat(duringOutage.get().header("Retry-After")).isNotNull();
        assertThat(acquirer.charges(ProviderKeys.of(TestGateway.MERCHANT_A, outageKey)).getInteger("requests")).isZero();
        ExactlyOnceChecker.Report report = InfraFaultFixture.check(history, acquirer, pg.url());
        assertThat(report.failed()).isPositive();
        report.assertValid();
      }
    }
  }
}
