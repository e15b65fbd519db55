package dev.idemgate.observability;

import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Context;
import ch.qos.logback.core.encoder.EncoderBase;
import java.util.List;
import java.util.Map;
import org.slf4j.event.KeyValuePair;

/**
 * One JSON object per log event, on one line: {@code timestamp} (epoch ms), {@code level},
 * {@code threadName}, {@code loggerName}, {@code mdc}, {@code kvpList} (when the event has
 * key-value pairs, their values as strings), {@code formattedMessage} and {@code throwable}.
 *
 * <p>This is the layout logback's own {@link JsonEncoder} writes with sequence number, nanoseconds,
 * context, raw message and arguments left out, and an event that carries a throwable or markers is
 * handed to that encoder as it is. Every other event, the access line above all, is written here
 * straight into the appender's byte buffer: logback's encoder builds each value as an escaped string,
 * then the line as a StringBuilder, then its bytes, and that was 6 % of the gateway's CPU when
 * serving replays (the log writer shares the two cores with the event loops).
 * {@code JsonLineEncoderTest} holds the two encoders to the same JSON for the same events.
 */
public final class JsonLineEncoder extends EncoderBase<ILoggingEvent> {
  private static final byte[] NO_BYTES = new byte[0];

  /** Same layout, for the rare event with a throwable (its frames) or markers. */
  private JsonEncoder logbackLayout;

  /**
   * Logback's own encoder set to this layout, started: what this encoder hands throwables to, and
   * what its test and benchmark compare it with.
   */
  public static JsonEncoder logbackLayout(Context context) {
    JsonEncoder encoder = new JsonEncoder();
    encoder.setContext(context);
    encoder.setWithSequenceNumber(false); // always 0 without a generator in the context
    encoder.setWithNanoseconds(false);
    encoder.setWithContext(false);
    encoder.setWithMessage(false); // the formatted message carries it
    encoder.setWithArguments(false); // fewer copies of caller data, fewer places for something sensitive
    encoder.setWithFormattedMessage(true);
    encoder.start();
    return encoder;
  }

  @Override
  public void start() {
    logbackLayout = logbackLayout(getContext());
    super.start();
  }

  @Override
  public void stop() {
    if (logbackLayout != null) {
      logbackLayout.stop();
    }
    super.stop();
  }

  @Override
  public byte[] headerBytes() {
    return NO_BYTES;
  }

  @Override
  public byte[] footerBytes() {
    return NO_BYTES;
  }

  @Override
  public byte[] encode(ILoggingEvent event) {
    JsonLineBuffer line = new JsonLineBuffer(512);
    encodeTo(event, line);
    return line.toByteArray();
  }

  /** Appends the event's line, newline included, to {@code out}. */
  void encodeTo(ILoggingEvent event, JsonLineBuffer out) {
    if (event.getThrowableProxy() != null || event.getMarkerList() != null) {
      out.bytes(logbackLayout.encode(event));
      return;
    }
    out.ascii("{\"timestamp\":").number(event.getTimeStamp())
        .ascii(",\"level\":").string(text(event.getLevel()))
        .ascii(",\"threadName\":").string(text(event.getThreadName()))
        .ascii(",\"loggerName\":").string(text(event.getLoggerName()))
        .ascii(",\"mdc\":{");
    Map<String, String> mdc = event.getMDCPropertyMap();
    if (mdc != null) {
      boolean first = true;
      for (Map.Entry<String, String> entry : mdc.entrySet()) {
        if (!first) {
          out.ascii(',');
        }
        first = false;
        out.string(text(entry.getKey())).ascii(':').string(text(entry.getValue()));
      }
    }
    out.ascii('}');
    List<KeyValuePair> pairs = event.getKeyValuePairs();
    if (pairs != null && !pairs.isEmpty()) {
      out.ascii(",\"kvpList\":[");
      for (int i = 0; i < pairs.size(); i++) {
        KeyValuePair pair = pairs.get(i);
        out.ascii(i == 0 ? "{" : ",{").string(text(pair.key)).ascii(':').string(text(pair.value)).ascii('}');
      }
      out.ascii(']');
    }
    out.ascii(",\"formattedMessage\":").string(text(event.getFormattedMessage()))
        .ascii(",\"throwable\":null}\n");
  }

  /** As logback writes a missing value: the string "null". */
  private static String text(Object value) {
    return value == null ? "null" : value.toString();
  }
}
