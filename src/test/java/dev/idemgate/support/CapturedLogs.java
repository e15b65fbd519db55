package dev.idemgate.support;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.util.List;
import org.slf4j.LoggerFactory;

/**
 * The events of one logger, captured from {@link #of} until {@link #close()}: use it in a
 * try-with-resources block so that the appender is always detached.
 */
public final class CapturedLogs implements AutoCloseable {
  private final Logger logger;
  private final ListAppender<ILoggingEvent> appender = new ListAppender<>();

  private CapturedLogs(Logger logger) {
    this.logger = logger;
    appender.start();
    logger.addAppender(appender);
  }

  public static CapturedLogs of(String loggerName) {
    return new CapturedLogs((Logger) LoggerFactory.getLogger(loggerName));
  }

  public static CapturedLogs of(Class<?> loggerClass) {
    return of(loggerClass.getName());
  }

  /**
   * The events so far. A copy taken under the appender's lock: the gateway's event loops append
   * while the test reads.
   */
  public List<ILoggingEvent> events() {
    synchronized (appender) {
      return List.copyOf(appender.list);
    }
  }

  @Override
  public void close() {
    logger.detachAppender(appender);
  }
}
