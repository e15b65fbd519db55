package dev.idemgate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** A rolling deploy as Kubernetes does it: SIGTERM while a payment is in flight. */
class GracefulShutdownIT {
  private static final String JAR = System.getProperty("idemgate.jar", "target/idemgate.jar");

  @Test
  @DisplayName("SIGTERM: readiness fails, new connections are refused, the in-flight slow payments of both API verticles complete, and the process exits 0")
  void drainsOnSigterm() throws Exception {
    int api = TestGateway.freePort();
    int management = TestGateway.freePort();
    Path log = Files.createTempFile("idemgate", ".log");
    Process gateway = start(api, management, log, 2);
    try (Http http = new Http()) {
      awaitReady(http, management, gateway, log);

      // Four connections, taken in turn by the two API verticles: both have a payment in flight,
      // and the verticle that hosts the shared store may stop first; the others' completions still
      // need its loop and pool.
      List<Future<Http.Reply>> inFlight = new ArrayList<>();
      List<String> keys = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        keys.add(Http.newKey());
        inFlight.add(http.payAsync(api, "sk_test_demo", keys.get(i), Http.payment(5000 + i, "tok_slow").encode(), Map.of()));
      }
      awaitClaimed(http, keys, log);
      gateway.destroy(); // SIGTERM
      awaitDraining(http, management, log);
      Thread.sleep(500); // the API servers stop accepting once readiness fails: no sign of it but a refused connection

      assertThatThrownBy(() -> http.pay(api, "sk_test_demo", Http.newKey(), Http.payment(100, "tok_visa")))
          .as("a new connection during the drain is refused").isInstanceOf(AssertionError.class);

      for (Future<Http.Reply> payment : inFlight) {
        assertThat(Http.await(payment).status()).as("log: %s", Files.readString(log)).isEqualTo(201);
      }
      assertThat(gateway.waitFor(30, TimeUnit.SECONDS)).isTrue();
      assertThat(gateway.exitValue()).as("exit status; log: %s", Files.readString(log)).isZero();
    } finally {
      gateway.destroyForcibly();
    }
  }

  @Test
  @DisplayName("a second SIGTERM, and a SIGINT, during the drain do not cut it short: the in-flight slow payment still "
      + "gets its 201 and the process exits 0 once it is answered")
  void laterSignalsDoNotCutTheDrain() throws Exception {
    int api = TestGateway.freePort();
    int management = TestGateway.freePort();
    Path log = Files.createTempFile("idemgate", ".log");
    Process gateway = start(api, management, log, 1);
    try (Http http = new Http()) {
      awaitReady(http, management, gateway, log);
      String key = Http.newKey();
      Future<Http.Reply> inFlight = http.payAsync(api, "sk_test_demo", key, Http.payment(5100, "tok_slow").encode(), Map.of());
      awaitClaimed(http, List.of(key), log);
      long started = System.nanoTime();
      gateway.destroy(); // SIGTERM
      awaitDraining(http, management, log);
      gateway.destroy(); // SIGTERM again, as an impatient operator or a second kill sends it
      Thread.sleep(300);
      new ProcessBuilder("kill", "-INT", String.valueOf(gateway.pid())).start().waitFor();

      assertThat(Http.await(inFlight).status()).as("the in-flight payment; log: %s", Files.readString(log)).isEqualTo(201);
      assertThat(gateway.waitFor(30, TimeUnit.SECONDS)).isTrue();
      assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started)).as("the process ran until the payment was answered")
          .isGreaterThan(2_000);
      assertThat(gateway.exitValue()).as("exit status; log: %s", Files.readString(log)).isZero();
    } finally {
      gateway.destroyForcibly();
    }
  }

  @Test
  @DisplayName("started with SIGINT ignored (a shell's background job): one WARN at start-up says SIGINT neither drains nor "
      + "stops it; SIGTERM still drains and exits 0")
  void inheritedIgnoredSigintIsReported() throws Exception {
    int api = TestGateway.freePort();
    int management = TestGateway.freePort();
    Path log = Files.createTempFile("idemgate", ".log");
    // As "java -jar idemgate.jar &" in a script: the shell ignores SIGINT for the job, exec keeps it so.
    Process gateway = start(List.of("sh", "-c", "trap '' INT; exec \"$0\" \"$@\"", "java", "-Xmx256m", "-jar", JAR),
        api, management, log, 1);
    try (Http http = new Http()) {
      awaitReady(http, management, gateway, log);
      Waits.eventually(Duration.ofSeconds(10), () -> read(log).contains("SIGINT was ignored"), "the start-up warning about SIGINT");
      assertThat(read(log).lines().filter(line -> line.contains("\"level\":\"WARN\"") && line.contains("SIGINT was ignored")))
          .as("log: %s", read(log)).singleElement().asString().contains("neither drains nor stops the gateway; send SIGTERM");
      assertThat(read(log)).doesNotContain("SIGTERM was ignored");
      gateway.destroy(); // SIGTERM
      assertThat(gateway.waitFor(30, TimeUnit.SECONDS)).isTrue();
      assertThat(gateway.exitValue()).as("exit status; log: %s", read(log)).isZero();
    } finally {
      gateway.destroyForcibly();
    }
  }

  /**
   * Waits until every key's payment is claimed in PostgreSQL (its charge, 3 s long, under way): its
   * connection was accepted before the signal, which the drain must then answer. A payment still
   * connecting when the signal comes is refused, as any new connection during the drain.
   */
  private static void awaitClaimed(Http http, List<String> keys, Path log) {
    try (TestDb db = new TestDb(http.vertx())) {
      Waits.eventually(Duration.ofSeconds(10), () -> keys.stream().allMatch(key -> "PROCESSING".equals(db.keyState("demo", key))),
          () -> "the slow payments are claimed, their charges under way; log: " + read(log));
    }
  }

  /** Waits until readiness fails with DRAINING: the gateway took the signal and its drain began. */
  private static void awaitDraining(Http http, int management, Path log) {
    AtomicReference<String> seen = new AtomicReference<>();
    Waits.eventually(Duration.ofSeconds(5), () -> {
      try {
        Http.Reply readiness = http.get(management, "/health/ready", null);
        seen.set(readiness.status() + " " + readiness.body());
        return readiness.status() == 503 && "DRAINING".equals(readiness.json().getString("status"));
      } catch (AssertionError unanswered) {
        seen.set(unanswered.getMessage());
        return false;
      }
    }, () -> "readiness fails with DRAINING after SIGTERM; last seen: " + seen.get() + "; log: " + read(log));
  }

  private static String read(Path log) {
    try {
      return Files.readString(log);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /**
   * The gateway jar in its own process, its output in {@code log}: charges of tok_slow take 3 s, the
   * drain 10 s at most, with {@code apiInstances} API verticles.
   */
  private static Process start(int api, int management, Path log, int apiInstances) throws Exception {
    return start(List.of("java", "-Xmx256m", "-jar", JAR), api, management, log, apiInstances);
  }

  private static Process start(List<String> command, int api, int management, Path log, int apiInstances) throws Exception {
    ProcessBuilder builder = new ProcessBuilder(command)
        .redirectErrorStream(true).redirectOutput(log.toFile());
    builder.environment().putAll(Map.of("IDEMGATE_PG_URL", TestGateway.pgUrl(), "IDEMGATE_REDIS_URL", TestGateway.redisUrl(),
        "IDEMGATE_HTTP_PORT", String.valueOf(api), "IDEMGATE_MANAGEMENT_PORT", String.valueOf(management),
        "IDEMGATE_SIMULATOR_SLOW_MS", "3000", "IDEMGATE_DRAIN_TIMEOUT", "10s",
        "IDEMGATE_API_INSTANCES", String.valueOf(apiInstances)));
    return builder.start();
  }

  static void awaitReady(Http http, int management, Process process, Path log) throws Exception {
    Instant deadline = Instant.now().plus(Duration.ofSeconds(40));
    while (Instant.now().isBefore(deadline) && process.isAlive()) {
      try {
        if (http.get(management, "/health/ready", null).status() == 200) {
          return;
        }
      } catch (AssertionError notYet) {
        // not listening yet
      }
      Thread.sleep(200);
    }
    throw new AssertionError("gateway not ready: " + Files.readString(log));
  }
}
