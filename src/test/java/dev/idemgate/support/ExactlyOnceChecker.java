package dev.idemgate.support;

import dev.idemgate.idempotency.Fingerprint;
import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.storage.Postgres;
import io.vertx.core.json.JsonObject;
import io.vertx.pgclient.PgConnectOptions;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Decides whether a run kept the gateway's promise, from three independent records of it, in the
 * spirit of Jepsen's total-queue checker: what the clients saw (the {@link Op history}), what the
 * provider did (the acquirer's charge log, {@code GET /charges}), and what the gateway wrote down
 * (the {@link Ledger}: {@code idemgate.payments} and {@code idemgate.idempotency_keys}).
 *
 * <p>The properties, each counted in the {@link Report} and each a {@link Property} that can be waived:
 * <ul>
 *   <li>{@link Property#NO_DOUBLE_CHARGE}: no client key (merchant, key) has more than one succeeded charge,
 *       across every payment it went through, and no provider key either;</li>
 *   <li>{@link Property#NO_LOST_PAYMENT}: every 201 the client got is a succeeded payments row whose
 *       provider key the acquirer charged, and every 402 a declined payments row;</li>
 *   <li>{@link Property#NO_ORPHAN_CHARGE}: every charge at the acquirer has a claim or a ledger row;</li>
 *   <li>{@link Property#IDENTICAL_REPLAYS}: for one key, every final answer (201/402) has the same body, and a
 *       pending answer (202) naming another payment than the final one names a payment that was never
 *       charged (recovery released it because the provider never saw it, and the key was claimed again);</li>
 *   <li>{@link Property#AMOUNTS_RECONCILE}: the amount of succeeded charges equals the amount of succeeded
 *       payments, and no payments row claims a success the acquirer did not charge;</li>
 *   <li>{@link Property#NOTHING_STUCK}: no record is PROCESSING or PENDING, and no payment pending, once
 *       the run has settled (call the checker after the settle time).</li>
 * </ul>
 *
 * <p>Use an acquirer process of the test's own ({@link AcquirerProcess}, dedup off, so a second charge
 * would show), record every request as an {@link Op}, then:
 * <pre>{@code
 * ExactlyOnceChecker.Report report = ExactlyOnceChecker.check(history,
 *     ExactlyOnceChecker.charges(acquirer.allCharges()),
 *     ExactlyOnceChecker.Ledger.load(TestGateway.pgUrl(), history));
 * report.assertValid();   // or assertValidExcept(Property.NOTHING_STUCK) while recovery is not there
 * }</pre>
 * The ledger is read for the keys in the history only, so runs sharing a database and merchants do
 * not see each other's rows. A run must not reuse a key after its retention ran out: the checker reads
 * two payments under one key as a double charge.
 */
public final class ExactlyOnceChecker {
  private ExactlyOnceChecker() {}

  /** What a client can conclude from one request. */
  public enum Outcome {
    /** A definite answer: 201 succeeded or 402 declined. */
    OK,
    /** Definitely nothing happened: a 4xx other than 402, 502 provider_unavailable, 503 store_unavailable. */
    FAILED,
    /** Cannot tell: 202 pending, any other 5xx, or no response at all (timeout, reset). */
    UNKNOWN;

    /** The outcome of an HTTP status; {@code status <= 0} means no response. */
    public static Outcome of(int status) {
      if (status == 201 || status == 402) {
        return OK;
      } else if (status == 502 || status == 503 || status >= 400 && status < 500) {
        return FAILED;
      }
      return UNKNOWN;
    }
  }

  /**
   * One request as the client saw it. Bodies are kept as SHA-256 hashes only.
   *
   * @param status the HTTP status, or 0 when no response came
   * @param responseBodyHash hex SHA-256 of the response body, or null without a response
   * @param paymentId the {@code id} of the payment in the response, or null
   */
  public record Op(String merchant, String key, String bodyHash, Outcome outcome, int status, String responseBodyHash,
      String paymentId) {

    /** A request that got a response. */
    public static Op of(String merchant, String key, JsonObject requestBody, Http.Reply reply) {
      String paymentId = null;
      if (reply.status() == 201 || reply.status() == 402 || reply.status() == 202) {
        try {
          paymentId = reply.json().getString("id");
        } catch (RuntimeException e) {
          paymentId = null; // an unreadable body is evidence too: it will not match its replays
        }
      }
      return new Op(merchant, key, Fingerprint.sha256Hex(requestBody.encode()), Outcome.of(reply.status()),
          reply.status(), Fingerprint.sha256Hex(reply.body() == null ? "" : reply.body()), paymentId);
    }

    /** A request that got no response (client timeout, connection reset or refused). */
    public static Op noResponse(String merchant, String key, JsonObject requestBody) {
      return new Op(merchant, key, Fingerprint.sha256Hex(requestBody.encode()), Outcome.UNKNOWN, 0, null, null);
    }

    String providerKey() {
      return ProviderKeys.of(merchant, key);
    }
  }

  /**
   * One charge in the acquirer's log, under the provider key it came with.
   *
   * @param reference the gateway's payment id sent with the charge, or null
   */
  public record Charge(String providerKey, String id, String status, long amount, String currency, String reference) {
    public Charge(String providerKey, String id, String status, long amount, String currency) {
      this(providerKey, id, status, amount, currency, null);
    }

    boolean succeeded() {
      return status.equals("succeeded");
    }
  }

  /** The charges of an acquirer's {@code GET /charges} answer ({@link AcquirerProcess#allCharges()}). */
  public static List<Charge> charges(JsonObject allCharges) {
    return allCharges.getJsonArray("charges").stream().map(JsonObject.class::cast)
        .map(c -> new Charge(c.getString("idempotency_key"), c.getString("id"), c.getString("status"),
            c.getLong("amount"), c.getString("currency"), c.getString("reference")))
        .collect(Collectors.toList());
  }

  /**
   * The charges that belong to {@code history}: under a provider key of its keys or of its ledger rows,
   * or carrying one of its payment ids. For an acquirer shared by several runs; a charge that belongs to
   * none of them cannot be told from another run's, so orphans are only complete with an acquirer of
   * the run's own.
   */
  public static List<Charge> chargesOf(List<Charge> all, List<Op> history, Ledger ledger) {
    Attribution attribution = new Attribution(history, ledger);
    return all.stream().filter(c -> attribution.keyOf(c) != null).collect(Collectors.toList());
  }

  /** Which client key (merchant, key) a charge or provider key belongs to. */
  private static final class Attribution {
    final Map<String, List<String>> byProviderKey = new HashMap<>();
    final Map<String, List<String>> byPaymentId = new HashMap<>();

    Attribution(List<Op> history, Ledger ledger) {
      for (Op op : history) {
        List<String> key = List.of(op.merchant(), op.key());
        byProviderKey.put(op.providerKey(), key);
        if (op.paymentId() != null) {
          byPaymentId.put(op.paymentId(), key);
          byProviderKey.put(ProviderKeys.reused(op.merchant(), op.key(), op.paymentId()), key);
        }
      }
      for (KeyRow row : ledger.keys()) {
        List<String> key = List.of(row.merchantId(), row.key());
        byProviderKey.put(row.providerKey(), key);
        byPaymentId.put(row.paymentId(), key);
      }
      for (PaymentRow row : ledger.payments()) {
        List<String> key = byPaymentId.get(row.id());
        if (key == null) {
          key = byProviderKey.get(row.providerKey());
        }
        if (key != null) {
          byProviderKey.putIfAbsent(row.providerKey(), key);
          byPaymentId.putIfAbsent(row.id(), key);
        }
      }
    }

    List<String> keyOf(Charge charge) {
      List<String> key = charge.reference() == null ? null : byPaymentId.get(charge.reference());
      return key != null ? key : byProviderKey.get(charge.providerKey());
    }
  }

  /** A row of {@code idemgate.payments}. */
  public record PaymentRow(String id, String merchantId, String providerKey, long amount, String currency, String status) {}

  /** A row of {@code idemgate.idempotency_keys}. */
  public record KeyRow(String merchantId, String key, String state, String paymentId, String providerKey) {}

  /** What the gateway wrote down, for the keys of one history. */
  public record Ledger(List<PaymentRow> payments, List<KeyRow> keys) {

    /**
     * Reads the idempotency records of every (merchant, key) in {@code history}, and the payments under
     * their provider keys (including keys whose record was released), over JDBC on the calling thread.
     */
    public static Ledger load(String pgUrl, Collection<Op> history) {
      Set<List<String>> pairs = new HashSet<>();
      history.forEach(op -> pairs.add(List.of(op.merchant(), op.key())));
      String[] merchants = pairs.stream().map(p -> p.get(0)).toArray(String[]::new);
      String[] keys = pairs.stream().map(p -> p.get(1)).toArray(String[]::new);
      PgConnectOptions options = Postgres.connectOptions(pgUrl);
      try (Connection connection = DriverManager.getConnection(Postgres.jdbcUrl(pgUrl), options.getUser(), options.getPassword())) {
        List<KeyRow> keyRows = new ArrayList<>();
        try (PreparedStatement select = connection.prepareStatement("""
            SELECT k.merchant_id, k.idempotency_key, k.state, k.payment_id, k.provider_key
            FROM idemgate.idempotency_keys k
            JOIN unnest(?::text[], ?::text[]) AS h(merchant_id, idempotency_key) USING (merchant_id, idempotency_key)""")) {
          select.setArray(1, connection.createArrayOf("text", merchants));
          select.setArray(2, connection.createArrayOf("text", keys));
          try (ResultSet rs = select.executeQuery()) {
            while (rs.next()) {
              keyRows.add(new KeyRow(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5)));
            }
          }
        }
        Set<String> providerKeys = new HashSet<>();
        history.forEach(op -> {
          providerKeys.add(op.providerKey());
          if (op.paymentId() != null) {
            // A key released after a pending answer is claimed again under a provider key of its own.
            providerKeys.add(ProviderKeys.reused(op.merchant(), op.key(), op.paymentId()));
          }
        });
        keyRows.forEach(k -> providerKeys.add(k.providerKey()));
        List<PaymentRow> payments = new ArrayList<>();
        try (PreparedStatement select = connection.prepareStatement("""
            SELECT id, merchant_id, provider_key, amount, currency, status FROM idemgate.payments
            WHERE provider_key = ANY(?::text[])""")) {
          Array array = connection.createArrayOf("text", providerKeys.toArray(String[]::new));
          select.setArray(1, array);
          try (ResultSet rs = select.executeQuery()) {
            while (rs.next()) {
              payments.add(new PaymentRow(rs.getString(1), rs.getString(2), rs.getString(3), rs.getLong(4),
                  rs.getString(5), rs.getString(6)));
            }
          }
        }
        return new Ledger(payments, keyRows);
      } catch (SQLException e) {
        throw new IllegalStateException("cannot read the ledger: " + e.getMessage(), e);
      }
    }
  }

  /** The properties a run must keep; a test may waive one it knows cannot hold yet. */
  public enum Property { NO_DOUBLE_CHARGE, NO_LOST_PAYMENT, NO_ORPHAN_CHARGE, IDENTICAL_REPLAYS, AMOUNTS_RECONCILE, NOTHING_STUCK }

  /**
   * The counts of one check and the violations behind them.
   *
   * @param charges every charge record at the acquirer (succeeded or declined)
   * @param doubleCharges succeeded charges beyond the first, summed over provider keys
   * @param lost keys whose 201 or 402 is not durable (or, for 201, not charged)
   * @param orphans charges whose provider key has neither an idempotency record nor a payments row
   * @param mismatchedReplays keys whose answers disagree
   * @param stuck records PROCESSING or PENDING, plus payments pending without such a record
   * @param chargedAmount sum of succeeded charges at the acquirer
   * @param ledgerAmount sum of succeeded payments in the ledger
   */
  public record Report(int requests, int ok, int failed, int unknown, int charges, int doubleCharges, int lost,
      int orphans, int mismatchedReplays, int stuck, long chargedAmount, long ledgerAmount,
      Map<Property, List<String>> violations) {

    public boolean valid() {
      return violations.isEmpty();
    }

    /** Fails with every violation listed, and the table line. */
    public void assertValid() {
      assertValidExcept();
    }

    /** Like {@link #assertValid()}, but ignores the {@code waived} properties (say why in the test). */
    public void assertValidExcept(Property... waived) {
      Set<Property> ignored = waived.length == 0 ? EnumSet.noneOf(Property.class) : EnumSet.copyOf(Arrays.asList(waived));
      StringBuilder message = new StringBuilder();
      violations.forEach((property, list) -> {
        if (!ignored.contains(property)) {
          message.append("\n  ").append(property).append(": ").append(String.join("; ", list.subList(0, Math.min(10, list.size()))));
          if (list.size() > 10) {
            message.append("; … ").append(list.size() - 10).append(" more");
          }
        }
      });
      if (message.length() > 0) {
        throw new AssertionError("exactly-once violated\n" + header() + "\n" + this + message);
      }
    }

    /** The column names of {@link #toString()}. */
    public static String header() {
      return String.format("%9s %6s %6s %7s | %7s %6s %5s %7s %8s %5s | %12s %12s",
          "requests", "ok", "failed", "unknown", "charges", "double", "lost", "orphans", "replays≠", "stuck",
          "charged", "ledger");
    }

    /** One table line of counts, aligned with {@link #header()}. */
    @Override
    public String toString() {
      return String.format("%9d %6d %6d %7d | %7d %6d %5d %7d %8d %5d | %12d %12d",
          requests, ok, failed, unknown, charges, doubleCharges, lost, orphans, mismatchedReplays, stuck,
          chargedAmount, ledgerAmount);
    }
  }

  /** Checks every property; never throws for a violation (see {@link Report#assertValid()}). */
  public static Report check(List<Op> history, List<Charge> charges, Ledger ledger) {
    Map<Property, List<String>> violations = new LinkedHashMap<>();
    int ok = 0;
    int failed = 0;
    int unknown = 0;
    for (Op op : history) {
      switch (op.outcome()) {
        case OK -> ok++;
        case FAILED -> failed++;
        case UNKNOWN -> unknown++;
      }
    }

    Map<String, List<Charge>> chargesByKey = new HashMap<>();
    charges.forEach(c -> chargesByKey.computeIfAbsent(c.providerKey(), k -> new ArrayList<>()).add(c));
    Map<String, PaymentRow> paymentsById = new HashMap<>();
    Map<String, PaymentRow> paymentsByProviderKey = new HashMap<>();
    ledger.payments().forEach(p -> {
      paymentsById.put(p.id(), p);
      paymentsByProviderKey.put(p.providerKey(), p);
    });

    // One charge per client key, across every payment the key went through (a pending payment that was
    // released and claimed again has a provider key of its own), and one per provider key for the rest.
    Attribution attribution = new Attribution(history, ledger);
    Map<Object, List<Charge>> succeededByOwner = new LinkedHashMap<>();
    for (Charge charge : charges) {
      if (charge.succeeded()) {
        List<String> key = attribution.keyOf(charge);
        succeededByOwner.computeIfAbsent(key != null ? key : charge.providerKey(), k -> new ArrayList<>()).add(charge);
      }
    }
    int doubleCharges = 0;
    for (Map.Entry<Object, List<Charge>> entry : succeededByOwner.entrySet()) {
      int succeeded = entry.getValue().size();
      if (succeeded > 1) {
        doubleCharges += succeeded - 1;
        String owner = entry.getKey() instanceof List<?> key ? key.get(0) + "/" + key.get(1)
            : "provider key " + abbreviate((String) entry.getKey());
        violation(violations, Property.NO_DOUBLE_CHARGE, owner + " charged " + succeeded + " times ("
            + entry.getValue().stream().map(Charge::id).collect(Collectors.joining(", ")) + ")");
      }
    }

    Set<List<String>> lostKeys = new HashSet<>();
    for (Op op : history) {
      if (op.status() != 201 && op.status() != 402) {
        continue;
      }
      String expected = op.status() == 201 ? "succeeded" : "declined";
      PaymentRow row = op.paymentId() == null ? null : paymentsById.get(op.paymentId());
      String problem = null;
      if (row == null) {
        problem = "no payments row for payment " + op.paymentId();
      } else if (!row.status().equals(expected)) {
        problem = "payment " + op.paymentId() + " answered " + op.status() + " but the ledger says " + row.status();
      } else if (op.status() == 201 && chargesByKey.getOrDefault(row.providerKey(), List.of()).stream()
          .noneMatch(c -> c.status().equals("succeeded"))) {
        problem = "payment " + op.paymentId() + " answered 201 but the acquirer has no succeeded charge under its provider key "
            + abbreviate(row.providerKey()) + " (" + chargesByKey.getOrDefault(row.providerKey(), List.of()).size() + " charges)";
      }
      if (problem != null && lostKeys.add(List.of(op.merchant(), op.key()))) {
        violation(violations, Property.NO_LOST_PAYMENT, op.merchant() + "/" + op.key() + ": " + problem);
      }
    }

    Set<String> recorded = new HashSet<>(paymentsByProviderKey.keySet());
    ledger.keys().forEach(k -> recorded.add(k.providerKey()));
    int orphans = 0;
    for (Charge charge : charges) {
      if (!recorded.contains(charge.providerKey())) {
        orphans++;
        violation(violations, Property.NO_ORPHAN_CHARGE, "charge " + charge.id() + " (" + charge.status() + ", "
            + charge.amount() + " " + charge.currency() + ") under provider key " + abbreviate(charge.providerKey())
            + " has no claim and no ledger row");
      }
    }

    int mismatchedReplays = 0;
    Map<List<String>, List<Op>> byKey = new LinkedHashMap<>();
    history.forEach(op -> byKey.computeIfAbsent(List.of(op.merchant(), op.key()), k -> new ArrayList<>()).add(op));
    for (Map.Entry<List<String>, List<Op>> entry : byKey.entrySet()) {
      Set<String> finalBodies = entry.getValue().stream().filter(op -> op.status() == 201 || op.status() == 402)
          .map(Op::responseBodyHash).collect(Collectors.toSet());
      Set<String> finalIds = entry.getValue().stream().filter(op -> op.status() == 201 || op.status() == 402)
          .map(op -> String.valueOf(op.paymentId())).collect(Collectors.toSet());
      // A pending payment may be released (the provider never saw it) and the key claimed again as a new
      // payment; that is only right if the pending one was never charged.
      Set<String> chargedOthers = entry.getValue().stream().filter(op -> op.status() == 202 && !finalIds.isEmpty())
          .map(Op::paymentId).filter(id -> id != null && !finalIds.contains(id))
          .filter(id -> charged(id, charges, paymentsById)).collect(Collectors.toSet());
      Set<String> paymentIds = entry.getValue().stream().filter(op -> op.paymentId() != null)
          .map(Op::paymentId).collect(Collectors.toCollection(java.util.TreeSet::new));
      if (finalBodies.size() > 1 || !chargedOthers.isEmpty()) {
        mismatchedReplays++;
        violation(violations, Property.IDENTICAL_REPLAYS, entry.getKey().get(0) + "/" + entry.getKey().get(1) + ": "
            + finalBodies.size() + " different final bodies, charged pending payments " + chargedOthers
            + " superseded, payment ids " + paymentIds + " in answers "
            + entry.getValue().stream().map(op -> op.status() + (op.paymentId() == null ? "" : ":" + op.paymentId()))
                .distinct().collect(Collectors.joining(",")));
      }
    }

    long chargedAmount = charges.stream().filter(c -> c.status().equals("succeeded")).mapToLong(Charge::amount).sum();
    long ledgerAmount = ledger.payments().stream().filter(p -> p.status().equals("succeeded")).mapToLong(PaymentRow::amount).sum();
    if (chargedAmount != ledgerAmount) {
      violation(violations, Property.AMOUNTS_RECONCILE, "acquirer charged " + chargedAmount + ", ledger has " + ledgerAmount + " succeeded");
    }
    for (PaymentRow payment : ledger.payments()) {
      if (payment.status().equals("succeeded") && chargesByKey.getOrDefault(payment.providerKey(), List.of()).stream()
          .noneMatch(c -> c.status().equals("succeeded"))) {
        violation(violations, Property.AMOUNTS_RECONCILE, "payment " + payment.id() + " is succeeded in the ledger but never charged");
      }
    }

    int stuck = 0;
    Set<String> stuckProviderKeys = new HashSet<>();
    for (KeyRow key : ledger.keys()) {
      if (key.state().equals("PROCESSING") || key.state().equals("PENDING")) {
        stuck++;
        stuckProviderKeys.add(key.providerKey());
        violation(violations, Property.NOTHING_STUCK, key.merchantId() + "/" + key.key() + " is still " + key.state());
      }
    }
    for (PaymentRow payment : ledger.payments()) {
      if (payment.status().equals("pending") && !stuckProviderKeys.contains(payment.providerKey())) {
        stuck++;
        violation(violations, Property.NOTHING_STUCK, "payment " + payment.id() + " is still pending");
      }
    }

    return new Report(history.size(), ok, failed, unknown, charges.size(), doubleCharges, lostKeys.size(), orphans,
        mismatchedReplays, stuck, chargedAmount, ledgerAmount, violations);
  }

  /** Whether payment {@code paymentId} was charged: a succeeded charge carries it, or its ledger row succeeded. */
  private static boolean charged(String paymentId, List<Charge> charges, Map<String, PaymentRow> paymentsById) {
    PaymentRow row = paymentsById.get(paymentId);
    return row != null && row.status().equals("succeeded")
        || charges.stream().anyMatch(c -> c.succeeded() && paymentId.equals(c.reference()));
  }

  private static void violation(Map<Property, List<String>> violations, Property property, String what) {
    violations.computeIfAbsent(property, p -> new ArrayList<>()).add(what);
  }

  /** Provider keys are 64 hex characters; the first 12 identify one in a message. */
  private static String abbreviate(String providerKey) {
    return providerKey == null || providerKey.length() <= 12 ? String.valueOf(providerKey) : providerKey.substring(0, 12) + "…";
  }
}
