package dev.idemgate;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import org.slf4j.LoggerFactory;

/**
 * Applies {@code log_level} from the configuration to the root logger once it is loaded, and
 * writes out queued log lines before the process exits.
 */
final class LogLevel {
  private LogLevel() {}

  static void apply(String level) {
    if (LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME) instanceof Logger root) {
      root.setLevel(Level.toLevel(level, Level.INFO));
    }
  }

  /** Stops logging, which writes out every queued line (the log writer is a daemon thread). */
  static void flush() {
    if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
      context.stop();
    }
  }
}
