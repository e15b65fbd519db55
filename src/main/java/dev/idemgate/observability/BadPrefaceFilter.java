package dev.idemgate.observability;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.turbo.TurboFilter;
import ch.qos.logback.core.spi.FilterReply;
import org.slf4j.Marker;

/**
 * Drops Vert.x's ERROR line for a TLS connection that negotiated HTTP/2 and then sent no HTTP/2
 * preface. Netty's message carries up to 24 of the bytes received in hex, which can be the start of
 * whatever the client sent instead (a probe sent {@code Authorization: Bearer sk…}), and nothing
 * bounds how many such lines one client causes. The connection is closed all the same; the line
 * tells an operator nothing the client does not already see.
 */
public final class BadPrefaceFilter extends TurboFilter {
  static final String LOGGER = "io.vertx.core.net.impl.ConnectionBase";
  static final String MESSAGE = "client preface string missing or corrupt";

  @Override
  public FilterReply decide(Marker marker, Logger logger, Level level, String format, Object[] params, Throwable t) {
    if (logger == null || !LOGGER.equals(logger.getName())) {
      return FilterReply.NEUTRAL;
    }
    boolean badPreface = format != null && format.contains(MESSAGE)
        || t != null && t.getMessage() != null && t.getMessage().contains(MESSAGE);
    return badPreface ? FilterReply.DENY : FilterReply.NEUTRAL;
  }
}
