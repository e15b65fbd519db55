package dev.idemgate.bench;

import io.vertx.core.json.JsonObject;
import java.util.Map;
import java.util.TreeMap;
import org.HdrHistogram.Histogram;

/**
 * Latencies in microseconds and responses by status, each answer judged expected or not by the
 * caller when it is recorded (whether a 409 is right depends on the request, not on the status
 * alone). Not thread safe: one recorder belongs to one event loop.
 */
public final class LatencyRecorder {
  private static final long HIGHEST_MICROS = 120_000_000L;

  private final Histogram histogram = new Histogram(HIGHEST_MICROS, 3);
  private final Map<String, Long> statuses = new TreeMap<>();
  /** The answers among {@link #statuses} that were wrong for their request, by status. */
  private final Map<String, Long> unexpected = new TreeMap<>();
  private final Map<String, Long> failures = new TreeMap<>();

  public void response(int status, long latencyNanos, boolean expected) {
    histogram.recordValue(Math.min(HIGHEST_MICROS, Math.max(1, latencyNanos / 1_000)));
    String s = Integer.toString(status);
    statuses.merge(s, 1L, Long::sum);
    if (!expected) {
      unexpected.merge(s, 1L, Long::sum);
    }
  }

  public void failure(Throwable cause) {
    failures.merge(cause.getClass().getSimpleName(), 1L, Long::sum);
  }

  public void failure(String kind, long count) {
    if (count > 0) {
      failures.merge(kind, count, Long::sum);
    }
  }

  public Histogram histogram() {
    return histogram;
  }

  public long responses() {
    return histogram.getTotalCount();
  }

  public long count(int status) {
    return statuses.getOrDefault(Integer.toString(status), 0L);
  }

  /** Answers that were wrong for their request, plus every request that got no answer. */
  public long errors() {
    return sum(unexpected) + sum(failures);
  }

  private static long sum(Map<String, Long> counts) {
    return counts.values().stream().mapToLong(Long::longValue).sum();
  }

  /** Statuses, unexpected statuses and failures, without the latencies. */
  public JsonObject tally() {
    return new JsonObject()
        .put("errors", errors())
        .put("statuses", new JsonObject(new TreeMap<String, Object>(statuses)))
        .put("unexpected_statuses", new JsonObject(new TreeMap<String, Object>(unexpected)))
        .put("failures", new JsonObject(new TreeMap<String, Object>(failures)));
  }

  /** The common figures of a result line, latencies in milliseconds. */
  public JsonObject figures(double seconds) {
    JsonObject out = new JsonObject()
        .put("requests", responses())
        .put("duration_s", round(seconds))
        .put("throughput", round(seconds > 0 ? responses() / seconds : 0))
        .mergeIn(tally());
    return out.mergeIn(percentiles(histogram));
  }

  static JsonObject percentiles(Histogram h) {
    if (h.getTotalCount() == 0) {
      return new JsonObject();
    }
    return new JsonObject()
        .put("p50_ms", millis(h.getValueAtPercentile(50)))
        .put("p99_ms", millis(h.getValueAtPercentile(99)))
        .put("p999_ms", millis(h.getValueAtPercentile(99.9)))
        .put("max_ms", millis(h.getMaxValue()));
  }

  static double millis(long micros) {
    return Math.round(micros / 10.0) / 100.0;
  }

  static double round(double value) {
    return Math.round(value * 10.0) / 10.0;
  }
}
