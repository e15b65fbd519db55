package dev.idemgate.observability;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.spi.LoggingEvent;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.slf4j.MarkerFactory;
import org.slf4j.event.KeyValuePair;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The gateway's encoder writes the same JSON as logback's JsonEncoder with the settings the
 * gateway used to ship, so log pipelines that parse it see no change.
 */
class JsonLineEncoderTest {
  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final String AWKWARD = "say \"hi\" \\ then / leave\n\r\t\b\f\u0001\u001f é € 😀 end";

  private final LoggerContext context = new LoggerContext();
  private final JsonLineEncoder encoder = new JsonLineEncoder();
  private final JsonEncoder logback = JsonLineEncoder.logbackLayout(context);

  @BeforeEach
  void start() {
    encoder.setContext(context);
    encoder.start();
  }

  private LoggingEvent event(String message, Object... arguments) {
    return event("vert.x-eventloop-thread-1", Map.of(), message, arguments);
  }

  private LoggingEvent event(String threadName, Map<String, String> mdc, String message, Object... arguments) {
    LoggingEvent event = new LoggingEvent(getClass().getName(), context.getLogger("idemgate.access"), Level.INFO,
        message, null, arguments.length == 0 ? null : arguments);
    event.setThreadName(threadName);
    event.setTimeStamp(1_795_906_388_723L);
    event.setMDCPropertyMap(mdc);
    return event;
  }

  private String ours(LoggingEvent event) {
    return new String(encoder.encode(event), StandardCharsets.UTF_8);
  }

  private void assertSameJsonAsLogback(LoggingEvent event) throws Exception {
    String line = ours(event);
    assertThat(line).endsWith("\n");
    assertThat(line.substring(0, line.length() - 1)).as("one line").doesNotContain("\n");
    JsonNode expected = JSON.readTree(new String(logback.encode(event), StandardCharsets.UTF_8));
    assertThat(JSON.readTree(line)).isEqualTo(expected);
  }

  @Test
  @DisplayName("an access line comes out as the same JSON logback writes, key-value pairs as strings in order")
  void accessLineMatchesLogback() throws Exception {
    LoggingEvent event = event("request");
    event.addKeyValuePair(new KeyValuePair("request_id", "req_6f23cd0c0e6daa82"));
    event.addKeyValuePair(new KeyValuePair("method", "POST"));
    event.addKeyValuePair(new KeyValuePair("status", 201));
    event.addKeyValuePair(new KeyValuePair("latency_ms", 0.003425));
    event.addKeyValuePair(new KeyValuePair("outcome", "replayed"));

    assertSameJsonAsLogback(event);
    JsonNode line = JSON.readTree(ours(event));
    assertThat(line.get("timestamp").asLong()).isEqualTo(1_795_906_388_723L);
    assertThat(line.get("level").asString()).isEqualTo("INFO");
    assertThat(line.get("loggerName").asString()).isEqualTo("idemgate.access");
    assertThat(line.get("kvpList").toString())
        .isEqualTo("[{\"request_id\":\"req_6f23cd0c0e6daa82\"},{\"method\":\"POST\"},{\"status\":\"201\"},"
            + "{\"latency_ms\":\"0.003425\"},{\"outcome\":\"replayed\"}]");
    assertThat(line.get("formattedMessage").asString()).isEqualTo("request");
    assertThat(line.get("throwable").isNull()).isTrue();
  }

  @Test
  @DisplayName("quotes, backslashes, control characters and text beyond ASCII are escaped or encoded as logback does")
  void awkwardTextMatchesLogback() throws Exception {
    Map<String, String> mdc = new LinkedHashMap<>();
    mdc.put("request_id", "req-42");
    mdc.put("note", AWKWARD);
    LoggingEvent event = event("thread " + AWKWARD, mdc, "message {} and more", AWKWARD);
    event.addKeyValuePair(new KeyValuePair("detail " + AWKWARD, AWKWARD));

    assertSameJsonAsLogback(event);
    JsonNode line = JSON.readTree(ours(event));
    assertThat(line.get("formattedMessage").asString()).isEqualTo("message " + AWKWARD + " and more");
    assertThat(line.get("mdc").get("note").asString()).isEqualTo(AWKWARD);
  }

  @Test
  @DisplayName("missing values, no key-value pairs, an empty MDC and odd timestamps match logback too")
  void edgeCasesMatchLogback() throws Exception {
    LoggingEvent noPairs = event("plain");
    assertSameJsonAsLogback(noPairs);
    assertThat(JSON.readTree(ours(noPairs)).has("kvpList")).isFalse();

    LoggingEvent nulls = event(null);
    nulls.addKeyValuePair(new KeyValuePair("merchant", null));
    assertSameJsonAsLogback(nulls);

    // A lone surrogate cannot be UTF-8: both write '?' (String.getBytes does for logback).
    assertSameJsonAsLogback(event("half a pair \uD83D here"));

    for (long timestamp : new long[] {0, 7, -1, Long.MAX_VALUE, Long.MIN_VALUE}) {
      LoggingEvent event = event("at " + timestamp);
      event.setTimeStamp(timestamp);
      assertSameJsonAsLogback(event);
    }
  }

  @Test
  @DisplayName("an event with a throwable or markers is written by logback's encoder, byte for byte")
  void throwableAndMarkersGoToLogback() {
    LoggingEvent failed = new LoggingEvent(getClass().getName(), context.getLogger("dev.idemgate.Main"), Level.ERROR,
        "failed", new IllegalStateException("boom", new RuntimeException("cause")), null);
    failed.setThreadName("main");
    failed.setMDCPropertyMap(Map.of());
    assertThat(encoder.encode(failed)).isEqualTo(logback.encode(failed));
    assertThat(ours(failed)).contains("\"className\":\"java.lang.IllegalStateException\"", "\"cause\":");

    LoggingEvent marked = event("marked");
    marked.addMarker(MarkerFactory.getMarker("AUDIT"));
    assertThat(encoder.encode(marked)).isEqualTo(logback.encode(marked));
  }

  @Test
  @DisplayName("the buffer grows past its first capacity and can drop a half-written line")
  void bufferGrowsAndTruncates() {
    JsonLineBuffer buffer = new JsonLineBuffer(4);
    buffer.ascii("{\"a\":").number(-1234567890123L).ascii(',');
    int mark = buffer.size();
    buffer.string(AWKWARD.repeat(20));
    buffer.truncate(mark);
    buffer.string("é").ascii('}');
    assertThat(new String(buffer.toByteArray(), StandardCharsets.UTF_8)).isEqualTo("{\"a\":-1234567890123,\"é\"}");
  }
}
