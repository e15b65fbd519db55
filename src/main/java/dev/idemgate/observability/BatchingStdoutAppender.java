package dev.idemgate.observability;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.UnsynchronizedAppenderBase;
import ch.qos.logback.core.encoder.Encoder;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;

/**
 * Writes log events to stdout from one background thread, a batch at a time: whatever queued up
 * since the last look goes out encoded in one write. Configured in {@code logback.xml} with the
 * JSON encoder.
 *
 * <p>Why not logback's AsyncAppender in front of its ConsoleAppender: at tens of thousands of
 * access lines per second, its writer thread blocks on an empty queue and every event loop that
 * logs has to wake it (a futex call and a context switch per few lines), and the console appender
 * makes one write call per line. Here the writer looks at the queue every {@code flushIntervalMs}
 * instead of being woken, so logging costs an event loop one non-blocking offer; a line reaches
 * stdout at most that long after it was logged. With {@link JsonLineEncoder} the lines are encoded
 * straight into the batch's buffer.
 *
 * <p>Never blocks the caller: when the queue is full the event is dropped and counted, and the next
 * batch says how many were lost; {@link #droppedLines} reads the count for
 * {@code idemgate_log_lines_dropped_total}. Stopping the appender (logback's shutdown hook, or a context
 * stop) writes out what is queued.
 */
public final class BatchingStdoutAppender extends UnsynchronizedAppenderBase<ILoggingEvent> {
  private static final int MAX_BATCH = 2_048;

  private Encoder<ILoggingEvent> encoder;
  private int queueSize = 16_384;
  private int flushIntervalMs = 10;
  private ArrayBlockingQueue<ILoggingEvent> queue;
  private Thread writer;
  private volatile boolean running;
  /** Dropped since the appender started: the meter's count, never reset. */
  private final LongAdder dropped = new LongAdder();
  /** How many of those a batch has told of already; the writer thread's alone. */
  private long droppedTold;

  public void setEncoder(Encoder<ILoggingEvent> encoder) {
    this.encoder = encoder;
  }

  public void setQueueSize(int queueSize) {
    this.queueSize = queueSize;
  }

  public void setFlushIntervalMs(int flushIntervalMs) {
    this.flushIntervalMs = flushIntervalMs;
  }

  @Override
  public void start() {
    if (encoder == null) {
      addError("no encoder for appender " + name);
      return;
    }
    if (queueSize < 1 || flushIntervalMs < 1) {
      addError("queueSize and flushIntervalMs must be positive for appender " + name);
      return;
    }
    queue = new ArrayBlockingQueue<>(queueSize);
    running = true;
    writer = new Thread(this::writeLoop, "idemgate-log-writer");
    writer.setDaemon(true);
    writer.start();
    super.start();
  }

  @Override
  protected void append(ILoggingEvent event) {
    // The message, thread name and MDC are taken now, on the caller's thread.
    event.prepareForDeferredProcessing();
    if (!queue.offer(event)) {
      dropped.increment();
    }
  }

  /**
   * Lines dropped so far by the appenders of this class on {@code context}'s root logger, where
   * {@code logback.xml} puts it: the count behind {@code idemgate_log_lines_dropped_total}.
   */
  public static double droppedLines(LoggerContext context) {
    long lines = 0;
    for (var appenders = context.getLogger(Logger.ROOT_LOGGER_NAME).iteratorForAppenders(); appenders.hasNext(); ) {
      if (appenders.next() instanceof BatchingStdoutAppender batching) {
        lines += batching.dropped.sum();
      }
    }
    return lines;
  }

  private void writeLoop() {
    List<ILoggingEvent> batch = new ArrayList<>(MAX_BATCH);
    JsonLineBuffer bytes = new JsonLineBuffer(64 * 1024);
    long interval = TimeUnit.MILLISECONDS.toNanos(flushIntervalMs);
    while (running || !queue.isEmpty()) {
      if (queue.drainTo(batch, MAX_BATCH) == 0) {
        LockSupport.parkNanos(this, interval);
        continue;
      }
      write(batch, bytes);
    }
  }

  private void write(List<ILoggingEvent> batch, JsonLineBuffer bytes) {
    long lost = dropped.sum() - droppedTold;
    droppedTold += lost;
    if (lost > 0) {
      bytes.bytes(("{\"timestamp\":" + System.currentTimeMillis() + ",\"level\":\"WARN\",\"loggerName\":\""
          + BatchingStdoutAppender.class.getName() + "\",\"formattedMessage\":\"" + lost
          + " log lines dropped: the log writer fell behind\"}\n").getBytes(StandardCharsets.UTF_8));
    }
    JsonLineEncoder jsonLines = encoder instanceof JsonLineEncoder json ? json : null;
    for (ILoggingEvent event : batch) {
      int lineStart = bytes.size();
      try {
        if (jsonLines != null) {
          jsonLines.encodeTo(event, bytes); // straight into the batch, no array per line
        } else {
          bytes.bytes(encoder.encode(event));
        }
      } catch (RuntimeException e) {
        bytes.truncate(lineStart); // no half line
        addError("could not encode a log event", e);
      }
    }
    batch.clear();
    // System.out as it is now (tests swap it), one write for the whole batch.
    PrintStream out = System.out;
    try {
      synchronized (out) {
        bytes.writeTo(out);
        out.flush();
      }
    } catch (IOException e) {
      addError("could not write log lines to stdout", e);
    }
    bytes.reset();
  }

  /** For tests: whether the writer thread is parked between looks (not draining or writing). */
  boolean writerIsParked() {
    return writer != null && writer.getState() == Thread.State.TIMED_WAITING;
  }

  @Override
  public void stop() {
    if (!isStarted()) {
      return;
    }
    super.stop(); // no more appends from here on
    running = false;
    LockSupport.unpark(writer);
    try {
      writer.join(TimeUnit.SECONDS.toMillis(2));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
