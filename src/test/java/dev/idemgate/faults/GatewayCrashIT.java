package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.AcquirerProcess;
import dev.idemgate.support.ClientHistory;
import dev.idemgate.support.ExactlyOnceChecker;
import dev.idemgate.support.GatewayProcess;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Future;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** Instances die and stall mid-payment; recovery and fencing finish their work exactly once. */
class GatewayCrashIT {

  @Test
  @DisplayName("gateway kill -9 with payments in flight at the acquirer, restarted: recovery resolves every record, nothing charged twice or lost")
  void killedMidFlight() throws Exception {
    Random random = InfraFaultFixture.random();
    // 300 ms at the acquirer keeps charges in flight when the gateway dies.
    try (AcquirerProcess acquirer = AcquirerProcess.start(false, 300, Map.of());
         Http http = new Http()) {
      Map<String, String> env = InfraFaultFixture.gatewayEnv(acquirer);
      try (GatewayProcess gateway = GatewayProcess.start(env).awaitReady()) {
        ClientHistory history = new ClientHistory();
        Workload workload = new Workload(http, history, TestGateway.MERCHANT_A, TestGateway.KEY_A, gateway::apiPort);
        Thread killer = new Thread(() -> {
          try {
            Thread.sleep(1_000);
            gateway.kill();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }, "kill");
        killer.start();
        workload.run(Duration.ofSeconds(2), 24, 60, 0.02, random);
        killer.join();
        gateway.restart().awaitReady();
        workload.settle(Duration.ofSeconds(60));

        ExactlyOnceChecker.Report report = InfraFaultFixture.check(history, acquirer, TestGateway.pgUrl());
        assertThat(report.unknown()).as("requests cut by the kill").isPositive();
        report.assertValid();
      }
    }
  }

  @Test
  @DisplayName("a gateway paused (SIGSTOP) past its lease while a second instance takes over, then resumed: still one charge per key")
  void pausedPastLease() throws Exception {
    // 1.5 s at the acquirer: the charges are sent, then the sender freezes before it hears back.
    try (AcquirerProcess acquirer = AcquirerProcess.start(false, 1_500, Map.of());
         Http http = new Http()) {
      Map<String, String> env = InfraFaultFixture.gatewayEnv(acquirer);
      env.put("IDEMGATE_PROVIDER_TIMEOUT", "3s");
      try (GatewayProcess stalled = GatewayProcess.start(env).awaitReady();
           GatewayProcess survivor = GatewayProcess.start(env).awaitReady()) {
        ClientHistory history = new ClientHistory();
        List<Workload.Payment> payments = new ArrayList<>();
        List<Future<Http.Reply>> replies = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
          Workload.Payment p = new Workload.Payment(Http.newKey(), Http.payment(1000 + i, "tok_visa"));
          payments.add(p);
          replies.add(history.payAsync(http, stalled.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A, p.key(), p.body(), Map.of()));
        }
        Thread.sleep(500);
        stalled.pause();
        // Lease 3 s + grace (provider timeout + 1 s) and a few recovery passes on the survivor.
        Thread.sleep(9_000);
        stalled.resume();
        replies.forEach(r -> r.otherwiseEmpty().toCompletionStage().toCompletableFuture().join());

        Workload retries = new Workload(http, history, TestGateway.MERCHANT_A, TestGateway.KEY_A, survivor::apiPort);
        for (Workload.Payment p : payments) {
          history.pay(http, survivor.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A, p.key(), p.body());
        }
        settle(http, history, survivor, payments);

        ExactlyOnceChecker.Report report = InfraFaultFixture.check(history, acquirer, TestGateway.pgUrl());
        assertThat(report.charges()).isEqualTo(20);
        report.assertValid();
        assertThat(retries).isNotNull();
      }
    }
  }

  private static void settle(Http http, ClientHistory history, GatewayProcess gateway, List<Workload.Payment> payments)
      throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    List<Workload.Payment> open = new ArrayList<>(payments);
    while (!open.isEmpty() && System.nanoTime() < deadline) {
      List<Workload.Payment> still = new ArrayList<>();
      for (Workload.Payment p : open) {
        Http.Reply r = history.pay(http, gateway.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A, p.key(), p.body());
        if (r == null || r.status() != 201 && r.status() != 402) {
          still.add(p);
        }
      }
      open = still;
      Thread.sleep(300);
    }
    assertThat(open).as("payments never settled").isEmpty();
  }
}
