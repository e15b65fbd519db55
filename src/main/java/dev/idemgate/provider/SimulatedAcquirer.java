package dev.idemgate.provider;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A deterministic acquirer, decided by the payment token (DESIGN §4), with a charge log by provider
 * key so that tests can prove no key was charged twice. Used in-process by the simulator connector.
 *
 * <p>Not thread-safe by design: one instance belongs to one verticle and is only touched on that
 * verticle's event loop.
 */
public final class SimulatedAcquirer {
  private final Vertx vertx;
  private final long latencyMs;
  private final long slowMs;
  private final boolean dedup;
  private final Map<String, ChargeLog> logs = new HashMap<>();
  private long chargeSequence;

  public SimulatedAcquirer(Vertx vertx, long latencyMs, long slowMs, boolean dedup) {
    this.vertx = vertx;
    this.latencyMs = latencyMs;
    this.slowMs = slowMs;
    this.dedup = dedup;
  }

  /** A charge as the acquirer recorded it. */
  public record Charge(String id, String status, long amount, String currency, String declineCode, String reference, Instant createdAt) {
    JsonObject toJson() {
      return new JsonObject().put("id", id).put("status", status).put("amount", amount).put("currency", currency)
          .put("decline_code", declineCode).put("reference", reference).put("created_at", createdAt.toString());
    }
  }

  private static final class ChargeLog {
    int requests;
    final List<Charge> charges = new ArrayList<>();
  }

  public Future<ProviderOutcome> charge(ChargeRequest request) {
    long delay = latencyMs + (request.source().equals("tok_slow") ? slowMs : 0);
    return after(delay).map(v -> decide(request));
  }

  private ProviderOutcome decide(ChargeRequest request) {
    String token = request.source();
    if (token.equals("tok_provider_down")) {
      return new ProviderOutcome.NotAttempted("acquirer unavailable before accepting the charge");
    }
    ChargeLog log = logs.computeIfAbsent(request.providerKey(), k -> new ChargeLog());
    log.requests++;
    if (dedup && !log.charges.isEmpty()) {
      return outcomeOf(log.charges.get(0));
    }
    String declineCode = switch (token) {
      case "tok_decline" -> "card_declined";
      case "tok_insufficient_funds" -> "insufficient_funds";
      default -> null;
    };
    Charge charge = new Charge("ch_sim_" + (++chargeSequence), declineCode == null ? "succeeded" : "declined",
        request.amount(), request.currency(), declineCode, request.reference(), Instant.now());
    log.charges.add(charge);
    if (token.equals("tok_timeout_after_charge")) {
      return new ProviderOutcome.Unknown("acquirer charged, then the answer was lost");
    }
    return outcomeOf(charge);
  }

  public Future<ProviderOutcome> inquire(String providerKey) {
    return after(latencyMs).map(v -> {
      ChargeLog log = logs.get(providerKey);
      if (log == null || log.charges.isEmpty()) {
        return new ProviderOutcome.NotAttempted("acquirer never saw this charge");
      }
      return outcomeOf(log.charges.get(log.charges.size() - 1));
    });
  }

  /** The log for one provider key, in the shape of the acquirer's {@code GET /charges}. */
  public JsonObject chargeLog(String providerKey) {
    ChargeLog log = logs.get(providerKey);
    JsonArray charges = new JsonArray();
    if (log != null) {
      log.charges.forEach(c -> charges.add(c.toJson()));
    }
    return new JsonObject().put("idempotency_key", providerKey).put("requests", log == null ? 0 : log.requests)
        .put("charges", charges);
  }

  private static ProviderOutcome outcomeOf(Charge charge) {
    return charge.declineCode() == null
        ? new ProviderOutcome.Succeeded(charge.id())
        : new ProviderOutcome.Declined(charge.id(), charge.declineCode());
  }

  private Future<Void> after(long delayMs) {
    if (delayMs <= 0) {
      return Future.succeededFuture();
    }
    Promise<Void> promise = Promise.promise();
    vertx.setTimer(delayMs, id -> promise.complete());
    return promise.future();
  }
}
