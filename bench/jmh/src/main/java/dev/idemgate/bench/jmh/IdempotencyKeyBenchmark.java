package dev.idemgate.bench.jmh;

import dev.idemgate.idempotency.IdempotencyKey;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;

/** Header validation of the Idempotency-Key, bare and in the quoted sf-string form. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class IdempotencyKeyBenchmark {
  @Param({"8e5c2f9a-4b1d-4c7e-9a3f-2d6b8e1c0f47", "\"8e5c2f9a-4b1d-4c7e-9a3f-2d6b8e1c0f47\""})
  public String header;

  @Benchmark
  public Optional<IdempotencyKey> parse() {
    return IdempotencyKey.parse(header);
  }
}
