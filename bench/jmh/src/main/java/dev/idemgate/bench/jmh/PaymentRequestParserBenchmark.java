package dev.idemgate.bench.jmh;

import dev.idemgate.payment.ParsedPayment;
import dev.idemgate.payment.PaymentRequestParser;
import io.vertx.core.buffer.Buffer;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/** Bytes to a validated payment request: JSON decoding, the card scan and every field check. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class PaymentRequestParserBenchmark {
  @Param({"typical", "full"})
  public String body;

  private Buffer raw;

  @Setup
  public void encodeBody() {
    raw = Requests.buffer(body.equals("typical") ? Requests.TYPICAL : Requests.FULL);
  }

  @Benchmark
  public ParsedPayment parse() {
    return PaymentRequestParser.parse(raw);
  }
}
