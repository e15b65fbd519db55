package dev.idemgate.bench.jmh;

import dev.idemgate.idempotency.Fingerprint;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/** Canonical JSON plus SHA-256 over it: once per request that reaches the gate. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class FingerprintBenchmark {
  @Param({"typical", "full"})
  public String body;

  private JsonObject request;

  @Setup
  public void parseBody() {
    request = Requests.object(body.equals("typical") ? Requests.TYPICAL : Requests.FULL);
  }

  @Benchmark
  public String fingerprint() {
    return Fingerprint.of("payments.create", request);
  }
}
