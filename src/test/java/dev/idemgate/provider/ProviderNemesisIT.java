package dev.idemgate.provider;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.ExactlyOnceChecker.Outcome;
import dev.idemgate.support.ExactlyOnceChecker.Report;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * Many clients, two per key, retrying until they get a final answer, while a nemesis breaks the network
 * between the gateway and the acquirer at random: refusing connections, blackholing them, cutting them,
 * adding latency. Then the network heals, recovery settles what is pending, and every property of the
 * checker must hold: one charge per paid key, nothing lost, no orphans, identical replays, amounts equal,
 * nothing stuck.
 */
@DisplayName("exactly once while the network to the acquirer fails at random")
class ProviderNemesisIT extends ProviderFaultFixture {
  private static final int KEYS = 24;
  private static final int CLIENTS_PER_KEY = 2;
  private static final Duration NEMESIS = Duration.ofSeconds(6);
  private static final Duration SETTLE = Duration.ofSeconds(45);
  private static final String[] TOKENS = {"tok_visa", "tok_visa", "tok_visa", "tok_decline", "tok_timeout_after_charge",
      "tok_reset_after_charge"};

  @BeforeAll
  static void start() {
    startAll("1s", Map.of());
  }

  @Test
  @DisplayName("retried payments under random network faults are charged exactly once and all settle")
  void nemesis() throws Exception {
    Random random = new Random(42);
    List<String> keys = new ArrayList<>();
    List<JsonObject> bodies = new ArrayList<>();
    for (int i = 0; i < KEYS; i++) {
      keys.add(Http.newKey());
      bodies.add(Http.payment(100 + random.nextInt(10_000), TOKENS[i % TOKENS.length]));
    }
    long deadline = System.nanoTime() + NEMESIS.plus(SETTLE).toNanos();
    ExecutorService clients = Executors.newFixedThreadPool(KEYS * CLIENTS_PER_KEY);
    List<Future<Integer>> finals = new ArrayList<>();
    try {
      for (int i = 0; i < KEYS; i++) {
        for (int c = 0; c < CLIENTS_PER_KEY; c++) {
          String key = keys.get(i);
          JsonObject body = bodies.get(i);
          finals.add(clients.submit(() -> retryUntilFinal(key, body, deadline)));
        }
      }
      breakNetworkAtRandom(new Random(7), NEMESIS);
      for (Future<Integer> fin : finals) {
        assertThat(fin.get(SETTLE.toSeconds() + NEMESIS.toSeconds() + 10, TimeUnit.SECONDS)).isIn(201, 402);
      }
    } finally {
      clients.shutdownNow();
      proxy.pass();
      proxy.latency(0);
    }

    Report report = checkEveryCharge();
    long releasedAndClaimedAgain = history.ops().stream().filter(op -> op.paymentId() != null)
        .collect(java.util.stream.Collectors.groupingBy(op -> op.key(),
            java.util.stream.Collectors.mapping(op -> op.paymentId(), java.util.stream.Collectors.toSet())))
        .values().stream().filter(ids -> ids.size() > 1).count();
    System.out.println(Report.header() + "\n" + report + "\nkeys whose pending payment was released and claimed again: "
        + releasedAndClaimedAgain);
    assertThat(report.requests()).isGreaterThan(KEYS * CLIENTS_PER_KEY);
    report.assertValid();
    long paidKeys = history.ops().stream().filter(op -> op.status() == 201).map(op -> op.key()).distinct().count();
    assertThat(report.chargedAmount()).isPositive();
    assertThat(paidKeys).isEqualTo(KEYS - KEYS / TOKENS.length);
  }

  /** One client: retry the same key and body until a final answer (201/402), or the deadline; returns the last status. */
  private int retryUntilFinal(String key, JsonObject body, long deadline) throws InterruptedException {
    int status = 0;
    while (System.nanoTime() < deadline) {
      Http.Reply reply = history.pay(http, gateway.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A, key, body);
      status = reply == null ? 0 : reply.status();
      if (Outcome.of(status) == Outcome.OK) {
        return status;
      }
      Thread.sleep(100 + (long) (Math.random() * 200));
    }
    return status;
  }

  private static void breakNetworkAtRandom(Random random, Duration length) throws InterruptedException {
    long end = System.nanoTime() + length.toNanos();
    while (System.nanoTime() < end) {
      switch (random.nextInt(5)) {
        case 0 -> proxy.refuse();
        case 1 -> proxy.blackhole();
        case 2 -> proxy.cutAll();
        case 3 -> proxy.latency(300);
        default -> {
          proxy.pass();
          proxy.latency(0);
        }
      }
      Thread.sleep(300 + random.nextInt(400));
    }
    proxy.pass();
    proxy.latency(0);
    proxy.cutAll(); // connections blackholed earlier lost bytes: start clean
  }
}
