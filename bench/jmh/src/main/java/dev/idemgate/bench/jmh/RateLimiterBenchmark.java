package dev.idemgate.bench.jmh;

import dev.idemgate.ratelimit.MerchantRateLimiter;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;

/**
 * One request through the rate limiter, for a merchant whose limit is never reached: what every
 * request pays once a limit is configured. {@code twoLoops} has two threads on one merchant, as two
 * event loops serving the same merchant contend for its window.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class RateLimiterBenchmark {
  private final MerchantRateLimiter limiter = new MerchantRateLimiter(merchant -> Long.MAX_VALUE / 4);

  @Benchmark
  public boolean oneLoop() {
    return limiter.tryAcquire("demo", MerchantRateLimiter.Kind.PAYMENTS, System.currentTimeMillis());
  }

  @Benchmark
  @Threads(2)
  public boolean twoLoops() {
    return limiter.tryAcquire("demo", MerchantRateLimiter.Kind.PAYMENTS, System.currentTimeMillis());
  }
}
