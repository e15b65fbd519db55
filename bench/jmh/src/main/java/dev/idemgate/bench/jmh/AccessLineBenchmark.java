package dev.idemgate.bench.jmh;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.spi.LoggingEvent;
import dev.idemgate.observability.JsonLineEncoder;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.slf4j.event.KeyValuePair;

/**
 * Encoding one access line (the event a replay logs) with the gateway's encoder and with logback's
 * JsonEncoder set up as the gateway shipped it before. The gateway's log writer uses a variant of
 * {@code JsonLineEncoder.encode} that appends to its batch without the array this one returns.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class AccessLineBenchmark {
  private LoggingEvent event;
  private JsonLineEncoder gateway;
  private JsonEncoder logback;

  @Setup
  public void setUp() {
    LoggerContext context = new LoggerContext();
    event = new LoggingEvent(AccessLineBenchmark.class.getName(), context.getLogger("idemgate.access"), Level.INFO,
        "request", null, null);
    event.setThreadName("vert.x-eventloop-thread-1");
    event.setMDCPropertyMap(Map.of());
    event.addKeyValuePair(new KeyValuePair("request_id", "req_6f23cd0c0e6daa82"));
    event.addKeyValuePair(new KeyValuePair("method", "POST"));
    event.addKeyValuePair(new KeyValuePair("route", "pay"));
    event.addKeyValuePair(new KeyValuePair("status", 201));
    event.addKeyValuePair(new KeyValuePair("latency_ms", 0.003425));
    event.addKeyValuePair(new KeyValuePair("merchant", "demo"));
    event.addKeyValuePair(new KeyValuePair("outcome", "replayed"));
    event.addKeyValuePair(new KeyValuePair("key_sha256", "47af1b61c8f39714"));

    gateway = new JsonLineEncoder();
    gateway.setContext(context);
    gateway.start();
    logback = JsonLineEncoder.logbackLayout(context);
  }

  @Benchmark
  public byte[] jsonLineEncoder() {
    return gateway.encode(event);
  }

  @Benchmark
  public byte[] logbackJsonEncoder() {
    return logback.encode(event);
  }
}
