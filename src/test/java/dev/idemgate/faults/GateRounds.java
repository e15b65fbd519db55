package dev.idemgate.faults;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.json.JsonObject;
import java.util.List;

/** How the Redis failover tests see that the gate works again: a round of payments, and what the gate logged. */
final class GateRounds {
  private GateRounds() {}

  /**
   * Pays {@code n} new payments and replays each (201, then the same bytes marked replayed), and
   * returns the warnings the Redis gate logged meanwhile, printed too: each is a call that failed and
   * left the decision to PostgreSQL.
   */
  static List<String> payAndReplay(Http http, TestGateway gateway, int n) {
    try (CapturedLogs gateLog = CapturedLogs.of(RedisGate.class)) {
      for (int i = 0; i < n; i++) {
        String key = Http.newKey();
        JsonObject body = Http.payment(1_000 + i, "tok_visa");
        Http.Reply first = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);
        Http.Reply replay = http.pay(gateway.apiPort(), TestGateway.KEY_A, key, body);
        assertThat(first.status()).isEqualTo(201);
        assertThat(replay.header("Idempotent-Replayed")).isEqualTo("true");
        assertThat(replay.body()).isEqualTo(first.body());
      }
      List<String> failures = gateLog.events().stream().filter(e -> e.getLevel().isGreaterOrEqual(Level.WARN))
          .map(e -> e.getFormattedMessage()).toList();
      failures.forEach(f -> System.out.println("gate warning: " + f));
      return failures;
    }
  }
}
