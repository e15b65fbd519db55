package dev.idemgate;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.support.CapturedLogs;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

class ShutdownSignalsTest {
  private static final Logger gatewayLog = LoggerFactory.getLogger(ShutdownSignalsTest.class);

  /**
   * A gateway as the signals see it: {@code startDraining} logs the draining line once; its close
   * waits until the test lets it go, then starts the drain (if nothing did) as Idemgate's does.
   */
  private static final class HeldGateway implements ShutdownSignals.Drainable {
    final CountDownLatch closeMayGoOn = new CountDownLatch(1);
    private final AtomicBoolean draining = new AtomicBoolean();

    @Override
    public void startDraining() {
      if (draining.compareAndSet(false, true)) {
        gatewayLog.info("draining: in-flight payments have 20000 ms to finish");
      }
    }

    @Override
    public void close() {
      try {
        closeMayGoOn.await(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      startDraining();
    }
  }

  /** The draining line and the lines about ignored signals, in the order they were logged. */
  private static List<String> drainLines(CapturedLogs logs) {
    return logs.events().stream().map(ILoggingEvent::getFormattedMessage)
        .filter(m -> m.startsWith("draining") || m.contains(" ignored"))
        .map(m -> m.startsWith("draining") ? "draining" : m.substring(0, m.indexOf(" ignored") + " ignored".length()))
        .toList();
  }

  @Test
  @DisplayName("the first signal logs the draining line before it returns; each later SIGTERM and SIGINT logs one "
      + "'ignored' line after it, however long the close takes to begin")
  void eachLaterSignalLogsOneLineAfterTheDrainingLine() throws Exception {
    HeldGateway gateway = new HeldGateway();
    CompletableFuture<Integer> exit = new CompletableFuture<>();
    ShutdownSignals signals = new ShutdownSignals(gateway, Duration.ofSeconds(20), exit::complete);
    try (CapturedLogs logs = CapturedLogs.of("dev.idemgate")) {
      signals.received("TERM");
      signals.received("TERM");
      signals.received("INT");
      gateway.closeMayGoOn.countDown();
      assertThat(exit.get(10, TimeUnit.SECONDS)).as("exit status").isZero();
      assertThat(drainLines(logs)).containsExactly("draining", "SIGTERM ignored", "SIGINT ignored");
    }
  }

  @Test
  @DisplayName("two SIGTERMs at once (as under timeout(1), which signals the process and then its group): the draining "
      + "line first, then one 'ignored' line")
  void twoSignalsAtOnce() throws Exception {
    for (int round = 0; round < 50; round++) {
      HeldGateway gateway = new HeldGateway();
      CompletableFuture<Integer> exit = new CompletableFuture<>();
      ShutdownSignals signals = new ShutdownSignals(gateway, Duration.ofSeconds(20), exit::complete);
      try (CapturedLogs logs = CapturedLogs.of("dev.idemgate")) {
        CyclicBarrier together = new CyclicBarrier(2);
        Runnable signal = () -> {
          try {
            together.await(10, TimeUnit.SECONDS);
          } catch (Exception e) {
            throw new IllegalStateException(e);
          }
          signals.received("TERM");
        };
        Thread first = new Thread(signal, "SIGTERM handler");
        Thread second = new Thread(signal, "SIGTERM handler");
        first.start();
        second.start();
        first.join(10_000);
        second.join(10_000);
        gateway.closeMayGoOn.countDown();
        assertThat(exit.get(10, TimeUnit.SECONDS)).as("exit status").isZero();
        assertThat(drainLines(logs)).as("round %d", round).containsExactly("draining", "SIGTERM ignored");
      }
    }
  }
}
