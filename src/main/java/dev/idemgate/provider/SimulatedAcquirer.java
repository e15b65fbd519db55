package dev.idemgate.provider;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A deterministic acquirer, decided by the payment token (DESIGN §4), with a charge log by provider
 * key so that tests can prove no key was charged twice. Used in-process by the simulator connector
 * and, behind HTTP, by the standalone acquirer ({@link AcquirerServer}).
 *
 * <p>With {@code dedup} on, a provider key already charged gets its first charge back; with it off,
 * every request is charged again, like a provider without idempotency.
 *
 * <p>It remembers the last {@link #REMEMBERED_KEYS} provider keys and forgets older ones, so a
 * gateway on its defaults can take a long load test without its heap filling up with charges
 * (about 520 bytes each). Once it has forgotten any key, an inquiry about a key it does not know
 * answers "unknown" instead of "never seen": it may be one it forgot, and "never seen" would let
 * recovery release a record whose charge was real.
 *
 * <p>Not thread-safe by design: one instance belongs to one verticle and is only touched on that
 * verticle's event loop.
 */
public final class SimulatedAcquirer {
  /**
   * Provider keys remembered: about 26 MB, the last 10 s of charges at 5,000 new payments/s. More
   * kept G1 marking the whole time under the bench's -Xmx256m.
   */
  public static final int REMEMBERED_KEYS = 50_000;

  private final Vertx vertx;
  private final long latencyMs;
  private final long slowMs;
  private final boolean dedup;
  private final int rememberedKeys;
  /** Insertion-ordered, so the full log reads in the order keys were first seen and the oldest goes first. */
  private final Map<String, ChargeLog> logs = new LinkedHashMap<>() {
    @Override
    protected boolean removeEldestEntry(Map.Entry<String, ChargeLog> eldest) {
      if (size() <= rememberedKeys) {
        return false;
      }
      forgottenKeys++;
      return true;
    }
  };
  private long forgottenKeys;
  private long chargeSequence;
  /**
   * Charge ids stay unique across restarts: each run numbers its charges under a prefix of its own,
   * wide enough (about 2.8 * 10^12 values) that two runs of a test suite or a fleet never share one:
   * the gateway leaves a payment pending when its charge id is already another payment's.
   */
  private final String runPrefix = Long.toString(java.util.concurrent.ThreadLocalRandom.current().nextLong(36L * 36 * 36 * 36 * 36 * 36 * 36 * 36), 36);
  private long requestsSeen;

  public SimulatedAcquirer(Vertx vertx, long latencyMs, long slowMs, boolean dedup) {
    this(vertx, latencyMs, slowMs, dedup, REMEMBERED_KEYS);
  }

  SimulatedAcquirer(Vertx vertx, long latencyMs, long slowMs, boolean dedup, int rememberedKeys) {
    this.rememberedKeys = rememberedKeys;
    this.vertx = vertx;
    this.latencyMs = latencyMs;
    this.slowMs = slowMs;
    this.dedup = dedup;
  }

  /** A charge as the acquirer recorded it, under the provider key it came with. */
  public record Charge(String id, String providerKey, String status, long amount, String currency, String declineCode,
      String reference, Instant createdAt) {
    public JsonObject toJson() {
      return new JsonObject().put("id", id).put("idempotency_key", providerKey).put("status", status)
          .put("amount", amount).put("currency", currency).put("decline_code", declineCode)
          .put("reference", reference).put("created_at", createdAt.toString());
    }
  }

  /** How the acquirer deals with one charge request: what it recorded and what it does with the answer. */
  public sealed interface Answer {
    /** Refused before accepting anything: nothing recorded, nothing charged. */
    record Refused(String reason) implements Answer {}

    /** Accepted; {@code charge} is what the request is answered with (new, or the first one when deduplicated). */
    record Accepted(Charge charge, Delivery delivery) implements Answer {}
  }

  /** What happens to the answer of an accepted charge on its way back. */
  public enum Delivery {
    /** The answer reaches the caller. */
    ANSWER,
    /** The charge is recorded, then the answer is lost: the caller times out ({@code tok_timeout_after_charge}). */
    LOSE_ANSWER,
    /** The charge is recorded, then the connection is reset ({@code tok_reset_after_charge}). */
    RESET
  }

  private static final class ChargeLog {
    int requests;
    final List<Charge> charges = new ArrayList<>(1); // more than one only without dedup
  }

  /** In-process form of {@link #accept}: the outcome the gateway would read from the answer. */
  public Future<ProviderOutcome> charge(ChargeRequest request) {
    return accept(request).map(answer -> {
      if (answer instanceof Answer.Accepted accepted) {
        return accepted.delivery() == Delivery.ANSWER
            ? outcomeOf(accepted.charge(), request.amount(), request.currency())
            : new ProviderOutcome.Unknown("acquirer charged, then the answer was lost");
      }
      return new ProviderOutcome.NotAttempted(((Answer.Refused) answer).reason());
    });
  }

  /**
   * Takes one charge request and answers after the configured latency (plus the slow delay for
   * {@code tok_slow}). The request is counted when it arrives and the charge recorded when it is decided,
   * so the log shows a request in progress as {@code requests} ahead of {@code charges}, like a real
   * acquirer that has the request but not yet the bank's answer.
   */
  public Future<Answer> accept(ChargeRequest request) {
    long delay = latencyMs + (request.source().equals("tok_slow") ? slowMs : 0);
    if (request.source().equals("tok_provider_down")) {
      return after(delay).map(v -> new Answer.Refused("acquirer unavailable before accepting the charge"));
    }
    requestsSeen++;
    ChargeLog log = logs.computeIfAbsent(request.providerKey(), k -> new ChargeLog());
    log.requests++;
    return after(delay).map(v -> decide(request, log));
  }

  private Answer decide(ChargeRequest request, ChargeLog log) {
    String token = request.source();
    if (dedup && !log.charges.isEmpty()) {
      // A provider that deduplicates answers a retry with the original charge, whatever its token.
      return new Answer.Accepted(log.charges.get(0), Delivery.ANSWER);
    }
    String declineCode = switch (token) {
      case "tok_decline" -> "card_declined";
      case "tok_insufficient_funds" -> "insufficient_funds";
      default -> null;
    };
    Charge charge = new Charge("ch_sim_" + runPrefix + "_" + (++chargeSequence), request.providerKey(),
        declineCode == null ? "succeeded" : "declined", request.amount(), request.currency(), declineCode,
        request.reference(), Instant.now());
    log.charges.add(charge);
    Delivery delivery = switch (token) {
      case "tok_timeout_after_charge" -> Delivery.LOSE_ANSWER;
      case "tok_reset_after_charge" -> Delivery.RESET;
      default -> Delivery.ANSWER;
    };
    return new Answer.Accepted(charge, delivery);
  }

  public Future<ProviderOutcome> inquire(ChargeInquiry inquiry) {
    return after(latencyMs).map(v -> {
      ChargeLog log = logs.get(inquiry.providerKey());
      if (log == null && forgottenKeys > 0) {
        return new ProviderOutcome.Unknown("acquirer simulator no longer remembers charges this old",
            ProviderOutcome.Heard.CANNOT_TELL);
      }
      if (log == null || log.requests == 0) {
        return new ProviderOutcome.NotAttempted("acquirer never saw this charge");
      }
      if (log.charges.isEmpty()) {
        return new ProviderOutcome.Unknown("acquirer is still processing this charge", ProviderOutcome.Heard.HAS_IT);
      }
      return outcomeOf(log.charges.get(log.charges.size() - 1), inquiry.amount(), inquiry.currency());
    });
  }

  /**
   * The log for one provider key, in the shape of the acquirer's {@code GET /charges?idempotency_key=K}.
   * A key it has no log of, once it has forgotten any, has a null {@code requests} count: it may be one
   * of the forgotten, and "0 requests" would tell recovery (HttpProvider#mapInquiry) that a charge
   * it made was never seen, and the key would be released and charged again.
   */
  public JsonObject chargeLog(String providerKey) {
    ChargeLog log = logs.get(providerKey);
    JsonArray charges = new JsonArray();
    if (log != null) {
      log.charges.forEach(c -> charges.add(c.toJson()));
    }
    Long requests = log != null ? Long.valueOf(log.requests) : forgottenKeys == 0 ? Long.valueOf(0) : null;
    return new JsonObject().put("idempotency_key", providerKey).put("requests", requests).put("charges", charges);
  }

  /** Every charge under every key, oldest key first, in the shape of the acquirer's {@code GET /charges}. */
  public JsonObject allCharges() {
    JsonArray charges = new JsonArray();
    logs.values().forEach(log -> log.charges.forEach(c -> charges.add(c.toJson())));
    return new JsonObject().put("requests", requestsSeen).put("forgotten_keys", forgottenKeys).put("charges", charges);
  }

  /** Every charge under every key, oldest key first. */
  public java.util.List<Charge> charges() {
    java.util.List<Charge> all = new ArrayList<>();
    logs.values().forEach(log -> all.addAll(log.charges));
    return all;
  }

  /**
   * The outcome a charge means for a payment of {@code amount} and {@code currency}: a charge of
   * another (the first one under the key, answered by deduplication) is not the payment's, as the
   * http connector reads it too.
   */
  private static ProviderOutcome outcomeOf(Charge charge, long amount, String currency) {
    if (charge.amount() != amount || !charge.currency().equalsIgnoreCase(currency)) {
      return new ProviderOutcome.Unknown("acquirer answered a charge of another amount or currency",
          ProviderOutcome.Heard.OTHER_CHARGE);
    }
    return charge.declineCode() == null
        ? new ProviderOutcome.Succeeded(charge.id())
        : new ProviderOutcome.Declined(charge.id(), charge.declineCode());
  }

  private Future<Void> after(long delayMs) {
    if (delayMs <= 0) {
      return Future.succeededFuture();
    }
    // A timer future of the caller's context: a bare promise would have none, and the provider
    // verticle's timeout on it would then run on Netty's global executor thread.
    return vertx.timer(delayMs, TimeUnit.MILLISECONDS).mapEmpty();
  }
}
