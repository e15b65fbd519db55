package dev.idemgate.observability;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class BatchingStdoutAppenderTest {
  private static List<String> run(int queueSize, int flushIntervalMs, Consumer<Logger> logging) {
    return run(new LoggerContext(), queueSize, flushIntervalMs, logging, () -> {});
  }

  /**
   * Logs through {@code context}, whose only appender is the one under test, on its root logger;
   * runs {@code stopped} once the appender has stopped (written what it held), before the context
   * stops; returns stdout's lines.
   */
  private static List<String> run(LoggerContext context, int queueSize, int flushIntervalMs, Consumer<Logger> logging,
      Runnable stopped) {
    PrintStream original = System.out;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    context.setMDCAdapter(org.slf4j.MDC.getMDCAdapter()); // a private context has none of its own
    try {
      System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
      PatternLayoutEncoder encoder = new PatternLayoutEncoder();
      encoder.setContext(context);
      encoder.setPattern("%msg%n");
      encoder.start();
      BatchingStdoutAppender appender = new BatchingStdoutAppender();
      appender.setContext(context);
      appender.setEncoder(encoder);
      appender.setQueueSize(queueSize);
      appender.setFlushIntervalMs(flushIntervalMs);
      appender.start();
      Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
      root.setLevel(Level.INFO);
      root.addAppender(appender);
      Logger logger = context.getLogger("test");
      // The writer takes its first look as soon as it starts; wait until it has and is parked, so
      // what it writes depends on the interval alone and not on how fast the thread got going.
      long deadline = System.nanoTime() + 5_000_000_000L;
      while (!appender.writerIsParked() && System.nanoTime() < deadline) {
        Thread.onSpinWait();
      }
      assertThat(appender.writerIsParked()).as("writer parked after its first look").isTrue();
      logging.accept(logger);
      appender.stop();
      stopped.run();

    } finally {
      context.stop();
      System.setOut(original);
    }
    return captured.toString(StandardCharsets.UTF_8).lines().toList();
  }

  @Test
  @DisplayName("every line logged before the appender stops reaches stdout, in order")
  void linesArriveInOrder() {
    List<String> lines = run(1_000, 10, logger -> {
      for (int i = 0; i < 500; i++) {
        logger.info("line {}", i);
      }
    });
    assertThat(lines).hasSize(500);
    assertThat(lines.get(0)).isEqualTo("line 0");
    assertThat(lines.get(499)).isEqualTo("line 499");
  }

  @Test
  @DisplayName("a full queue drops lines instead of blocking, and the next batch says how many were lost")
  void fullQueueDropsAndSaysSo() {
    // The writer looks only every 60 s, so the queue of 2 fills up; stopping writes what it holds.
    List<String> lines = run(2, 60_000, logger -> {
      for (int i = 0; i < 5; i++) {
        logger.info("line {}", i);
      }
    });
    assertThat(lines).hasSize(3);
    assertThat(lines.get(0)).contains("\"level\":\"WARN\"").contains("3 log lines dropped");
    assertThat(lines.subList(1, 3)).containsExactly("line 0", "line 1");
  }

  @Test
  @DisplayName("dropped lines are counted on idemgate_log_lines_dropped_total, which the batch that tells of them does not reset")
  void droppedLinesAreMetered() {
    LoggerContext context = new LoggerContext();
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    GatewayMetrics.watchLogWriter(registry, context);
    List<String> lines = run(context, 2, 60_000, logger -> {
      for (int i = 0; i < 5; i++) {
        logger.info("line {}", i);
      }
      assertThat(dropped(registry)).isEqualTo(3);
    }, () -> assertThat(dropped(registry)).as("after the batch that told of them").isEqualTo(3));
    assertThat(lines.get(0)).contains("3 log lines dropped");
  }

  private static double dropped(SimpleMeterRegistry registry) {
    return registry.get("idemgate.log.lines.dropped").functionCounter().count();
  }
}
