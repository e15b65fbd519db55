package dev.idemgate.recovery;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.RecordState;
import dev.idemgate.idempotency.StoreUnavailable;
import dev.idemgate.storage.Postgres;
import io.vertx.core.Future;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.SqlClient;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

/**
 * Recovery's SQL. Taking a batch is one statement: the rows are locked with
 * {@code FOR UPDATE SKIP LOCKED}, their epoch is bumped and their next look pushed past the
 * inquiry, so instances sweeping at the same moment take disjoint batches and never ask the
 * provider about the same key at once. A record taken is also labelled with this gateway's own
 * provider id (the first of those it takes), so that records claimed under the URL before a
 * {@code provider_name} was set move to the name as soon as recovery first takes them.
 *
 * <p>One clock: every moment here is PostgreSQL's (its {@code now()}, or a column written from it,
 * {@code created_at} included), and the gateway sends durations. A take returns PostgreSQL's
 * {@code now()} ({@link DueRecord#takenAt}), so that recovery's own verdicts on a record's age (a
 * late charge, the acquirer's memory) are on that clock too, never on this instance's.
 *
 * <p>A record's charge conflict (V12's {@code charge_conflict_reference} and
 * {@code charge_conflict_with}: the charge id the acquirer answered, already another payment's) is
 * written by IdempotencyStore's COMPLETE alone, which recovery's completions and an operator's
 * verdicts go through too: set when it leaves the payment pending for that reason, cleared when it
 * writes anything else. The statements here leave it as it is. A take (a pass's or a verdict's), a
 * hand-back and a reschedule keep the record pending: an inquiry that hears no charge (no answer,
 * one still processing, "never seen" no longer believed) does not undo the last charge the acquirer
 * answered, which is still why the payment waits for an operator. A release and the purge delete
 * the record, the columns with it.
 */
final class RecoveryStore {
  /**
   * A dead pod's claim: PROCESSING, its lease run out more than the takeover grace ({@code $2} ms) ago.
   */
  private static final String EXPIRED_CLAIM = "state = 'PROCESSING' AND lease_expires_at < now() - $2 * interval '1 millisecond'";

  /** The expired claims and the pending records whose next inquiry is due, taken to be asked about. */
  static final String TAKE_DUE = takeOver("(" + EXPIRED_CLAIM + ") OR (state = 'PENDING' AND next_inquiry_at <= now())",
      "inquiry_attempts = k.inquiry_attempts + 1,");

  /**
   * {@link #TAKE_DUE}'s expired claims alone, for a pass that sends no inquiry (the acquirer asked to
   * wait, RecoveryVerticle#sweep): a dead pod's claims are taken over at their usual moment and made
   * pending, while the pending ones wait. No inquiry is sent, so {@code inquiry_attempts} stays.
   */
  static final String TAKE_EXPIRED_CLAIMS = takeOver(EXPIRED_CLAIM, "");

  /**
   * The one take-over statement both takes share, so that they cannot drift apart: up to {@code $1}
   * records of this gateway's providers ({@code $4}) that match {@code which}, each held for
   * {@code $3} ms under a new epoch; {@code countInquiry} is the SET item that counts the inquiry
   * about to be sent, or empty.
   */
  private static String takeOver(String which, String countInquiry) {
    return """
        WITH due AS (
          SELECT merchant_id, idempotency_key FROM idemgate.idempotency_keys
          WHERE (%s)
            AND (provider_id = ANY($4) OR provider_id IS NULL)
          ORDER BY updated_at
          LIMIT $1
          FOR UPDATE SKIP LOCKED)
        UPDATE idemgate.idempotency_keys k
        SET epoch = k.epoch + 1,
            lease_expires_at = now() + $3 * interval '1 millisecond',
            next_inquiry_at = now() + $3 * interval '1 millisecond',
            %s
            updated_at = now(),
            provider_id = ($4::text[])[1]
        FROM due
        WHERE k.merchant_id = due.merchant_id AND k.idempotency_key = due.idempotency_key
        RETURNING k.merchant_id, k.idempotency_key, k.fingerprint, k.state, k.epoch, k.payment_id, k.provider_key,
                  k.amount, k.currency, k.merchant_reference, k.created_at, k.inquiry_attempts, now() AS taken_at""".formatted(which, countInquiry);
  }

  /**
   * Takes one unsettled record of this gateway's provider by payment id for an operator's verdict,
   * if it was claimed at least {@code $3} ms ago (on PostgreSQL's clock, which wrote
   * {@code created_at}): PENDING, or PROCESSING whose lease ran out more than {@code $5} ms ago, the
   * gate of recovery's own takeover ({@link #TAKE_DUE}). The owner of a claim sends its charge within
   * its lease, counted from before the claim reached PostgreSQL, so past that gate the charge was
   * sent or never will be; {@code created_at} alone would not say so. Its epoch is bumped, so a
   * recovery pass asking about it at the same moment is fenced out of writing its own outcome. The
   * two arms each match one partial index: {@code state IN (...)} implies neither index's predicate
   * and would scan every key.
   */
  static final String TAKE_PENDING = """
      UPDATE idemgate.idempotency_keys k
      SET epoch = k.epoch + 1,
          lease_expires_at = now() + $2 * interval '1 millisecond',
          next_inquiry_at = now() + $2 * interval '1 millisecond',
          updated_at = now()
      WHERE (k.state = 'PENDING' OR (k.state = 'PROCESSING' AND k.lease_expires_at < now() - $5 * interval '1 millisecond'))
        AND k.payment_id = $1 AND k.created_at <= now() - $3 * interval '1 millisecond'
        AND (k.provider_id = ANY($4) OR k.provider_id IS NULL)
      RETURNING k.merchant_id, k.idempotency_key, k.fingerprint, k.state, k.epoch, k.payment_id, k.provider_key,
                k.amount, k.currency, k.merchant_reference, k.created_at, k.inquiry_attempts, now() AS taken_at""";

  /**
   * An unsettled record's claim time, when {@link #TAKE_PENDING} may take it if still PROCESSING, and
   * PostgreSQL's now, to read them against.
   */
  static final String PENDING_SINCE = """
      SELECT created_at, now() AS now, CASE WHEN state = 'PROCESSING' THEN lease_expires_at + $3 * interval '1 millisecond' END AS takeable_from
      FROM idemgate.idempotency_keys
      WHERE (state = 'PENDING' OR state = 'PROCESSING') AND payment_id = $1 AND (provider_id = ANY($2) OR provider_id IS NULL)""";

  /**
   * Gives a record an operator's verdict took, and did not settle, back to recovery at once, instead
   * of holding it for the verdict's whole budget: its next inquiry is due now, or, still PROCESSING,
   * its lease ends now (recovery takes it after the takeover grace, {@code GatewayConfig#takeoverGrace}). Fenced on the epoch the
   * verdict holds and the payment id.
   */
  static final String HAND_BACK = """
      UPDATE idemgate.idempotency_keys
      SET lease_expires_at = now(), next_inquiry_at = now(), updated_at = now()
      WHERE merchant_id = $1 AND idempotency_key = $2 AND epoch = $3 AND payment_id = $4
        AND state IN ('PROCESSING', 'PENDING')""";

  private static final String RESCHEDULE = """
      UPDATE idemgate.idempotency_keys SET next_inquiry_at = now() + $4 * interval '1 millisecond', updated_at = now()
      WHERE merchant_id = $1 AND idempotency_key = $2 AND epoch = $3 AND payment_id = $5 AND state = 'PENDING'""";

  /**
   * The record and a pending ledger row go together: the acquirer never charged the payment. Its client
   * may hold the payment id from a 202 (a PENDING record's, or one answered while the record was
   * still PROCESSING, which has no ledger row), so the same statement keeps the payment in
   * {@code released_payments} for GET: the ledger row as it was, else the record's copy of it
   * under this gateway's provider ({@code $5}), for reason {@code $6}; with the record's idempotency key
   * and provider key, so that the retry under that key goes out under the same provider key
   * ({@code IdempotencyStore#CLAIM}).
   */
  private static final String RELEASE_UNSEEN = """
      WITH gone AS (
        DELETE FROM idemgate.idempotency_keys
        WHERE merchant_id = $1 AND idempotency_key = $2 AND epoch = $3 AND payment_id = $4
          AND state IN ('PROCESSING', 'PENDING')
        RETURNING payment_id, merchant_id, idempotency_key, provider_key, amount, currency, merchant_reference,
                  created_at),
      ledger AS (
        DELETE FROM idemgate.payments p USING gone WHERE p.id = gone.payment_id AND p.status = 'pending'
        RETURNING p.id, p.merchant_id, p.amount, p.currency, p.merchant_reference, p.provider, p.created_at),
      kept AS (
        INSERT INTO idemgate.released_payments
          (id, merchant_id, amount, currency, merchant_reference, provider, reason, created_at, idempotency_key,
           provider_key)
        SELECT l.id, l.merchant_id, l.amount, l.currency, l.merchant_reference, l.provider, $6, l.created_at,
               gone.idempotency_key, gone.provider_key FROM ledger l, gone
        UNION ALL
        SELECT payment_id, merchant_id, amount, currency, merchant_reference, $5, $6, created_at, idempotency_key,
               provider_key FROM gone
        WHERE NOT EXISTS (SELECT 1 FROM ledger))
      SELECT count(*) AS released FROM gone""";

  /**
   * Oldest first, so that the scan walks the retention index from its low end and stops after
   * {@code $1} rows. Without the order the planner, seeing many expired keys (or stale statistics
   * after a burst), read every expired entry of the index into a bitmap before the limit: 200-335 ms
   * per batch of 500 with 500,000 keys expired, against 8 ms in order. A key is purged once it is
   * free ({@code greatest(expires_at, frees_at)}, see IdempotencyStore); the index is on
   * {@code expires_at}, which comes first within the clocks' skew.
   */
  static final String PURGE_EXPIRED = """
      WITH gone AS (
        DELETE FROM idemgate.idempotency_keys WHERE ctid IN (
          SELECT ctid FROM idemgate.idempotency_keys
          WHERE state = 'COMPLETED' AND expires_at < now() AND greatest(expires_at, frees_at) < now()
          ORDER BY expires_at
          LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING greatest(expires_at, frees_at) AS freed_at)
      SELECT count(*) AS purged, floor(extract(epoch FROM now() - max(freed_at)) * 1000)::bigint AS newest_expired_ms
      FROM gone""";

  /**
   * Two counts, each written to match one partial index: {@code state IN ('PENDING', 'PROCESSING')}
   * implies neither index's predicate, so one query over both scanned every retained key, every
   * recovery pass on every instance.
   */
  static final String PENDING_SUMMARY = """
      SELECT (SELECT count(*) FROM idemgate.idempotency_keys WHERE state = 'PENDING') AS pending,
             (SELECT count(*) FROM idemgate.idempotency_keys
              WHERE state = 'PROCESSING' AND lease_expires_at < now()) AS expired_leases""";

  /**
   * Oldest first, at most {@code $1}; only merchant {@code $3} and payment {@code $4} when given
   * (the filters narrow what the partial indexes found). A PROCESSING record is listed once its
   * lease ran out, and while a recovery pass or an operator's verdict holds it: their take pushes
   * its lease past the inquiry, and only they set {@code next_inquiry_at} on a PROCESSING record (a
   * claim clears it), so without that arm it vanished from the list for the hold. Both arms of the
   * PROCESSING branch read the partial index of PROCESSING records, one entry per claim in flight.
   */
  static final String PENDING_LIST = """
      SELECT merchant_id, provider_key, encode(sha256(convert_to(idempotency_key, 'UTF8')), 'hex') AS key_hash, payment_id, state,
             inquiry_attempts, next_inquiry_at, created_at, charge_conflict_reference, charge_conflict_with,
             created_at <= now() - $2 * interval '1 millisecond' AS beyond_provider_key_retention,
             CASE WHEN state = 'PROCESSING' AND lease_expires_at >= now() THEN lease_expires_at END AS held_until
      FROM idemgate.idempotency_keys
      WHERE (state = 'PENDING'
             OR (state = 'PROCESSING' AND (lease_expires_at < now() OR next_inquiry_at IS NOT NULL)))
        AND ($3::text IS NULL OR merchant_id = $3) AND ($4::text IS NULL OR payment_id = $4)
      ORDER BY created_at LIMIT $1""";

  private final Pool pool;
  private final long timeoutMs;
  private final String[] providerIds;
  private final long providerKeyRetentionMs;
  /** The names this acquirer's payments have in the ledger, the current one first. */
  private final String[] ledgerProviders;

  /**
   * @param providerIds recovery only takes records claimed for these (see {@code GatewayConfig#recoveredProviderIds})
   * @param providerKeyRetention how long the provider remembers keys: older records are marked in the unresolved list
   * @param ledgerProviders the names this acquirer's payments have in the ledger, the current one
   *     first ({@code GatewayConfig#ledgerProviders}): a released payment without a ledger row takes it
   */
  RecoveryStore(Pool pool, Duration timeout, List<String> providerIds, Duration providerKeyRetention,
      List<String> ledgerProviders) {
    this.pool = pool;
    this.ledgerProviders = ledgerProviders.toArray(String[]::new);
    this.providerKeyRetentionMs = providerKeyRetention.toMillis();
    this.providerIds = providerIds.toArray(String[]::new);
    this.timeoutMs = timeout.toMillis();
  }

  /**
   * Takes up to {@code batch} due records: PROCESSING whose lease ran out more than {@code grace}
   * ago (so a charge sent just before the lease ended has had time to reach the provider), and
   * PENDING whose next inquiry is due. Each is held for {@code hold} while it is inquired.
   */
  Future<List<DueRecord>> takeDue(int batch, Duration grace, Duration hold) {
    return take("take due", TAKE_DUE, batch, grace, hold);
  }

  /**
   * Takes up to {@code batch} PROCESSING records whose lease ran out more than {@code grace} ago,
   * as {@link #takeDue} does, and no PENDING one; each held for {@code hold}.
   */
  Future<List<DueRecord>> takeExpiredClaims(int batch, Duration grace, Duration hold) {
    return take("take expired claims", TAKE_EXPIRED_CLAIMS, batch, grace, hold);
  }

  private Future<List<DueRecord>> take(String operation, String sql, int batch, Duration grace, Duration hold) {
    long sentAt = System.nanoTime();
    return run(operation, sql, Tuple.of(batch, grace.toMillis(), hold.toMillis(), providerIds)).map(rows -> {
      List<DueRecord> due = new ArrayList<>(rows.size());
      for (Row row : rows) {
        due.add(dueRecord(row, sentAt));
      }
      return due;
    });
  }

  /**
   * Takes the unsettled record of payment {@code paymentId} (held for {@code hold}) if it was claimed
   * at least {@code age} ago and, still PROCESSING, its lease ran out more than {@code grace} ago;
   * null if there is none.
   */
  Future<DueRecord> takePending(String paymentId, Duration age, Duration hold, Duration grace) {
    Tuple params = Tuple.tuple().addString(paymentId).addLong(hold.toMillis())
        .addLong(age.toMillis()).addArrayOfString(providerIds).addLong(grace.toMillis());
    long sentAt = System.nanoTime();
    return run("take pending", TAKE_PENDING, params)
        .map(rows -> rows.size() == 0 ? null : dueRecord(rows.iterator().next(), sentAt));
  }

  /**
   * The unsettled record of payment {@code paymentId} that {@link #takePending} did not take: when it
   * was claimed, and, still PROCESSING, from when it may be taken ({@code grace} after its lease);
   * null if there is none.
   */
  Future<Unsettled> pendingSince(String paymentId, Duration grace) {
    // Built by hand: Tuple.of(id, array) would spread the array as further parameters.
    return run("pending since", PENDING_SINCE, Tuple.tuple().addString(paymentId).addArrayOfString(providerIds)
        .addLong(grace.toMillis())).map(rows -> {
          if (rows.size() == 0) {
            return null;
          }
          Row row = rows.iterator().next();
          OffsetDateTime takeable = row.getOffsetDateTime("takeable_from");
          return new Unsettled(row.getOffsetDateTime("created_at").toInstant(), takeable == null ? null : takeable.toInstant(),
              row.getOffsetDateTime("now").toInstant());
        });
  }

  /** See {@link #pendingSince}; {@code takeableFrom} is null for a PENDING record. All on PostgreSQL's clock. */
  record Unsettled(Instant claimedAt, Instant takeableFrom, Instant now) {}

  /** @param sentAt {@link System#nanoTime()} just before the take was sent */
  private static DueRecord dueRecord(Row row, long sentAt) {
    return new DueRecord(row.getString("merchant_id"), new IdempotencyKey(row.getString("idempotency_key")),
        row.getString("fingerprint"), RecordState.valueOf(row.getString("state")), row.getInteger("epoch"),
        row.getString("payment_id"), row.getString("provider_key"), row.getLong("amount"),
        row.getString("currency"), row.getString("merchant_reference"),
        row.getOffsetDateTime("created_at").toInstant(), row.getInteger("inquiry_attempts"),
        row.getOffsetDateTime("taken_at").toInstant(), sentAt);
  }

  /**
   * Sets the next inquiry of a record still pending; fenced on the epoch recovery holds and the
   * payment id (an epoch alone repeats once a released key is claimed anew, IdempotencyStore#RELEASE).
   * False when fenced out (an operator or another pass took the record meanwhile).
   */
  Future<Boolean> reschedule(DueRecord r, Duration delay) {
    return run("reschedule", RESCHEDULE, Tuple.of(r.merchantId(), r.key().value(), r.epoch(), delay.toMillis(), r.paymentId()))
        .map(rows -> rows.rowCount() == 1);
  }

  /**
   * Another succeeded payment of this acquirer in the ledger with charge id {@code $1} (another
   * acquirer's ids may be the same text); the index on provider_reference finds it. Succeeded only,
   * as the request path's check (IdempotencyStore#COMPLETE): a declined payment moved no money, and
   * acquirers whose ids name an order's attempts answer a paid retry with the declined attempt's id,
   * so a verdict naming it is the paid one's charge, not a typo.
   */
  static final String CHARGED_AS = """
      SELECT id FROM idemgate.payments
      WHERE provider_reference = $1 AND id <> $2 AND status = 'succeeded' AND provider = ANY($3) LIMIT 1""";

  /**
   * The lock of one charge id, held until the transaction ends. The two-key form, with a key of
   * Idemgate's own first, so that it shares nothing with Flyway's (one bigint key). The same
   * statement has PostgreSQL end this transaction should its client fall silent between two
   * statements for {@code $2} ms (a paused process, a partition that drops packets): it holds the
   * payment's record and ledger row once written, and every retry of the key waited behind them,
   * failing the whole claim group it was in, until TCP gave up on the connection (hours). Set for
   * this transaction only ({@code is_local}), not as a startup parameter, which PgBouncer refuses.
   * The grouped completion takes the same lock, by the same two keys, in V11's
   * {@code idemgate.charge_holders} (IdempotencyStore's COMPLETE): keep them the same, so that a
   * verdict and a completion of one charge id go one after the other.
   */
  static final String LOCK_CHARGE = """
      SELECT set_config('idle_in_transaction_session_timeout', $2, true), pg_advisory_xact_lock(1229870151, hashtext($1))""";

  /**
   * Runs {@code work} in a transaction of one connection that first takes the lock of charge id
   * {@code reference} ({@link #LOCK_CHARGE}), committed when {@code work} succeeds. Two operator
   * verdicts naming one charge id for two payments then check and write one after the other: each
   * checked it unused ({@link #CHARGED_AS}) before either had written it, and the ledger held it
   * twice. Only the lock's own connection is used, so a verdict waiting for it holds up none that
   * holds it; and after the lock each statement sees what the other committed.
   *
   * <p>Fails with a {@link StoreUnavailable} of operation {@code commit} when everything but the
   * COMMIT succeeded: a COMMIT sent and then cut off (a lost connection) may have committed, so the
   * caller must not answer as if nothing was written. Any earlier failure rolled everything back.
   */
  <T> Future<T> underChargeLock(String reference, Function<SqlConnection, Future<T>> work) {
    AtomicBoolean written = new AtomicBoolean();
    return pool.withTransaction(connection -> run(connection, "charge lock", LOCK_CHARGE,
            Tuple.of(reference, String.valueOf(timeoutMs + 1_000)))
            .compose(locked -> work.apply(connection))
            .onSuccess(done -> written.set(true)))
        .recover(failure -> Future.failedFuture(written.get() ? new StoreUnavailable("commit", failure) : failure));
  }

  /**
   * The id of another succeeded payment whose charge is {@code reference}, or null (also for a null
   * reference); on {@code client}, the connection of {@link #underChargeLock}.
   */
  Future<String> paymentCharged(SqlClient client, String reference, String paymentId) {
    if (reference == null) {
      return Future.succeededFuture(null);
    }
    return run(client, "charged as", CHARGED_AS,
            Tuple.tuple().addString(reference).addString(paymentId).addArrayOfString(ledgerProviders))
        .map(rows -> rows.size() == 0 ? null : rows.iterator().next().getString("id"));
  }

  /** See {@link #HAND_BACK}; false when fenced out. */
  Future<Boolean> handBack(DueRecord r) {
    return run("hand back", HAND_BACK, Tuple.of(r.merchantId(), r.key().value(), r.epoch(), r.paymentId()))
        .map(rows -> rows.rowCount() == 1);
  }

  /**
   * Releases a record the provider never charged, keeping its payment as released for
   * {@code reason}; true if this epoch and payment id still owned it.
   */
  Future<Boolean> releaseUnseen(DueRecord r, ReleaseReason reason) {
    return run("release", RELEASE_UNSEEN, Tuple.of(r.merchantId(), r.key().value(), r.epoch(), r.paymentId(),
            ledgerProviders[0], reason.column()))
        .map(rows -> rows.iterator().next().getLong("released") == 1);
  }

  /**
   * Deletes at most {@code batch} expired completed keys, oldest first. The ledger is untouched.
   * Keys locked by another instance's purge are skipped, not waited for.
   */
  Future<PurgedBatch> purgeExpired(int batch) {
    return run("purge", PURGE_EXPIRED, Tuple.of(batch)).map(rows -> {
      Row row = rows.iterator().next();
      Long newestExpiredMs = row.getLong("newest_expired_ms");
      return new PurgedBatch(row.getLong("purged").intValue(), newestExpiredMs == null ? null : Duration.ofMillis(newestExpiredMs));
    });
  }

  /**
   * What one purge statement deleted: how many keys, and how long ago, on PostgreSQL's clock, the
   * latest expiry among them was (null if none).
   */
  record PurgedBatch(int count, Duration newestExpiredFor) {}

  /** Counts for the gauges: pending records, and processing records past their lease. */
  Future<long[]> unresolvedCounts() {
    return run("count", PENDING_SUMMARY, Tuple.tuple()).map(rows -> {
      Row row = rows.iterator().next();
      return new long[] {row.getLong("pending"), row.getLong("expired_leases")};
    });
  }

  /**
   * The unresolved records for {@code /admin/pending}, oldest first: each with its provider key and
   * the hash of its client key, never the raw key.
   * {@code more} says whether records past {@code limit} match too.
   *
   * @param merchantId only this merchant's, or null for all
   * @param paymentId only this payment, or null for all
   */
  Future<JsonObject> unresolved(int limit, String merchantId, String paymentId) {
    return run("list", PENDING_LIST, Tuple.of(limit + 1, providerKeyRetentionMs, merchantId, paymentId)).map(rows -> {
      JsonArray list = new JsonArray();
      for (Row row : rows) {
        if (list.size() == limit) {
          break;
        }
        Instant next = row.getOffsetDateTime("next_inquiry_at") == null ? null : row.getOffsetDateTime("next_inquiry_at").toInstant();
        OffsetDateTime heldUntil = row.getOffsetDateTime("held_until");
        String conflictingCharge = row.getString("charge_conflict_reference");
        list.add(new JsonObject()
            .put("merchant_id", row.getString("merchant_id"))
            // The key the charge went to the acquirer under, the one its charge log is looked up by: a
            // hash of merchant and key (and, for a key used again after it expired, payment id) that
            // the acquirer receives with every charge, so no secret.
            .put("provider_key", row.getString("provider_key"))
            // SHA-256 of the client's key alone, the access log's key_sha256 (its first 16 digits):
            // for finding the payment's requests there. No key the acquirer knows.
            .put("key_sha256", row.getString("key_hash"))
            .put("payment_id", row.getString("payment_id"))
            .put("state", row.getString("state"))
            .put("inquiry_attempts", row.getInteger("inquiry_attempts"))
            .put("next_inquiry_at", next == null ? null : next.toString())
            .put("created_at", row.getOffsetDateTime("created_at").toInstant().toString())
            // Recovery no longer believes the provider's "never seen" about it (GatewayConfig#providerRemembers).
            .put("beyond_provider_key_retention", row.getBoolean("beyond_provider_key_retention"))
            // A claim recovery or an operator's verdict is resolving now; a verdict sent before then gets 409.
            .put("held_until", heldUntil == null ? null : heldUntil.toInstant().toString())
            // Left pending because the acquirer answered a charge id another payment holds: that id, as
            // a verdict names it (provider_reference), and that payment. Null for any other reason.
            .put("charge_conflict", conflictingCharge == null ? null : new JsonObject()
                .put("provider_reference", conflictingCharge)
                .put("held_by_payment_id", row.getString("charge_conflict_with"))));
      }
      return new JsonObject().put("unresolved", list).put("more", rows.size() > limit);
    });
  }

  private Future<RowSet<Row>> run(String operation, String sql, Tuple params) {
    return run(pool, operation, sql, params);
  }

  /**
   * One statement, within the store timeout in all. On the pool it is a transaction of its own, sent
   * again on a new session if its session turns out read-only ({@link Postgres#execute}); on a
   * connection ({@link #underChargeLock}) it is part of a transaction, and is never sent again.
   */
  private Future<RowSet<Row>> run(SqlClient client, String operation, String sql, Tuple params) {
    return Postgres.execute(client, sql, params, timeoutMs)
        .timeout(timeoutMs, TimeUnit.MILLISECONDS)
        .recover(failure -> Future.failedFuture(new StoreUnavailable(operation, failure)));
  }
}
