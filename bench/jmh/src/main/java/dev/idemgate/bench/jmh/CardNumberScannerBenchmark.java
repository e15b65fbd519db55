package dev.idemgate.bench.jmh;

import dev.idemgate.payment.CardNumberScanner;
import io.vertx.core.json.JsonObject;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/** The card-data scan over a whole body: every request pays for it before anything else. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class CardNumberScannerBenchmark {
  @Param({"typical", "full", "references", "long-name"})
  public String body;

  private JsonObject request;

  @Setup
  public void parseBody() {
    request = Requests.object(switch (body) {
      case "typical" -> Requests.TYPICAL;
      case "full" -> Requests.FULL;
      case "references" -> Requests.REFERENCES;
      default -> Requests.LONG_NAME;
    });
  }

  @Benchmark
  public Optional<String> findCardNumber() {
    return CardNumberScanner.findCardNumber(request);
  }
}
