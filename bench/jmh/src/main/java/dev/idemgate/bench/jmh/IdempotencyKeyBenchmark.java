package dev.idemgate.bench.jmh;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.auth.MerchantKeys;
import dev.idemgate.config.ConfigLoader;
import dev.idemgate.idempotency.IdempotencyKey;
import java.util.Map;
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

/**
 * Header validation of the Idempotency-Key, bare and in the quoted sf-string form; and the same with
 * the look for a credential in it that each payment request but a replay from memory then makes
 * (ApiVerticle.secretIn): two plain keys in force and an admin token, as in
 * CredentialScannerBenchmark, the request presenting one of the keys.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class IdempotencyKeyBenchmark {
  private static final String PRESENTED = "sk_live_Qm9vZmJhcmJhenF1eHF1dXhjb3JnZWdyYXVsdA";

  @Param({"8e5c2f9a-4b1d-4c7e-9a3f-2d6b8e1c0f47", "\"8e5c2f9a-4b1d-4c7e-9a3f-2d6b8e1c0f47\""})
  public String header;

  private CredentialScanner credentials;

  @Setup
  public void setUp() {
    credentials = new CredentialScanner(MerchantKeys.load(ConfigLoader.load(Optional.empty(),
        Map.of("IDEMGATE_API_KEYS", "demo=" + PRESENTED + ",other=sk_live_other_merchant_key_0123456789"))),
        Optional.of("0123456789abcdef0123456789abcdef"));
  }

  @Benchmark
  public Optional<IdempotencyKey> parse() {
    return IdempotencyKey.parse(header);
  }

  /** {@link #parse}, then what ApiVerticle.secretIn looks for: a credential. */
  @Benchmark
  public boolean parseAndScreen() {
    return credentials.find(IdempotencyKey.parse(header).orElseThrow().value(), PRESENTED) != null;
  }
}
