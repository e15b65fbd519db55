package dev.idemgate.bench.jmh;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.auth.MerchantKeys;
import dev.idemgate.config.ConfigLoader;
import io.vertx.core.json.JsonObject;
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
 * The credential scan, beside the card scan it follows: over a whole body (each fresh payment), and
 * over an ingress's request id (each access line, replays too, when the header is sent). Two plain
 * keys in force and an admin token; the request presents one of the keys.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class CredentialScannerBenchmark {
  private static final String PRESENTED = "sk_live_Qm9vZmJhcmJhenF1eHF1dXhjb3JnZWdyYXVsdA";

  @Param({"typical", "full", "references"})
  public String body;

  private JsonObject request;
  private CredentialScanner credentials;

  @Setup
  public void setUp() {
    request = Requests.object(switch (body) {
      case "typical" -> Requests.TYPICAL;
      case "full" -> Requests.FULL;
      default -> Requests.REFERENCES;
    });
    credentials = new CredentialScanner(MerchantKeys.load(ConfigLoader.load(Optional.empty(),
        Map.of("IDEMGATE_API_KEYS", "demo=" + PRESENTED + ",other=sk_live_other_merchant_key_0123456789"))),
        Optional.of("0123456789abcdef0123456789abcdef"));
  }

  @Benchmark
  public CredentialScanner.Found findInBody() {
    return credentials.findIn(request, PRESENTED);
  }

  /** An ingress-nginx request id: 32 hex digits, one word. */
  @Benchmark
  public String forwardedRequestId() {
    return credentials.redact("5f1e0c2a9b7d4e3f8a6b1c0d2e4f6a8b", PRESENTED);
  }
}
