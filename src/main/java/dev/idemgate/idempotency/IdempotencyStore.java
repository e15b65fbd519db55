package dev.idemgate.idempotency;

import dev.idemgate.observability.ThrottledWarning;
import dev.idemgate.storage.GroupCommit;
import dev.idemgate.storage.Postgres;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.pgclient.PgException;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.SqlClient;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The idempotency records and the ledger in PostgreSQL, the source of truth.
 *
 * <p>Claims and completions of concurrent requests are grouped ({@link GroupCommit}): each group
 * is one statement over {@code unnest} arrays, so one round trip and one durable commit serve many
 * payments. A claim is still committed before its provider call, and every state change after the
 * claim is conditional on the record's state and epoch (the fencing token), so an owner that lost
 * its lease changes nothing.
 *
 * <p>Every moment PostgreSQL compares with its {@code now()} is written from its {@code now()}: the
 * claim's {@code created_at} and lease, the moment the key is freed ({@code frees_at}) and the next
 * inquiry. The gateway sends durations for them, so a gateway whose clock disagrees with
 * PostgreSQL's (or with another instance's) cannot make a key expire early, nor recovery think a
 * claim older than it is. The expiry its answer told ({@code expires_at}, on the gateway's clock) is
 * replayed. A completed key is free again once both have passed, {@code greatest(expires_at,
 * frees_at) <= now()} (in CLAIM, HELD and RecoveryStore's purge): {@code greatest} skips a NULL
 * {@code frees_at} (records written before V10), and a value left by an earlier use of the key, or
 * not renewed by a pod of the previous version, is older than {@code expires_at} and changes nothing.
 */
public final class IdempotencyStore {
  private static final Logger log = LoggerFactory.getLogger(IdempotencyStore.class);

  /**
   * {@code created_at} is PostgreSQL's {@code now()} (to the millisecond, as shown), returned to the
   * claimer: recovery counts a claim's age from it on the same clock ({@code RecoveryStore}). The
   * claimer's send window starts before the claim is sent, so before that moment.
   */
  private static final String CLAIM = """
      INSERT INTO idemgate.idempotency_keys AS k
        (merchant_id, idempotency_key, fingerprint, state, epoch, generation, payment_id, provider_key,
         lease_expires_at, amount, currency, merchant_reference, description, metadata, created_at, provider_id)
      SELECT i.merchant_id, i.idempotency_key, i.fingerprint, 'PROCESSING', 1, 1, i.payment_id,
             -- A key with a payment in the ledger is being used again: the provider key of its last
             -- release that nothing was charged under since (a retry after a release goes out under
             -- the released payment's provider key, so a released charge that lands late is matched
             -- to it), else one of its own. Evaluated only in that case (CASE runs one branch).
             CASE WHEN used.provider_key IS NULL THEN i.first_key
                  ELSE coalesce(
                    (SELECT r.provider_key FROM idemgate.released_payments r
                     WHERE r.merchant_id = i.merchant_id AND r.idempotency_key = i.idempotency_key
                       AND r.provider_key IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM idemgate.payments p2 WHERE p2.provider_key = r.provider_key)
                     ORDER BY r.released_at DESC LIMIT 1),
                    encode(sha256(convert_to(i.merchant_id || ':' || i.idempotency_key || '#' || i.payment_id, 'UTF8')), 'hex'))
                  END,
             now() + $1 * interval '1 millisecond', i.amount, i.currency, i.merchant_reference, i.description,
             i.metadata::jsonb, date_trunc('milliseconds', now()), $12
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[],
                  $10::text[], $11::text[])
        AS i(merchant_id, idempotency_key, fingerprint, payment_id, first_key, amount, currency, merchant_reference,
             description, metadata)
      -- A lateral probe with LIMIT is run per row through the index; an EXISTS could be planned as
      -- one hash of the whole ledger per statement (see Postgres.requestPool).
      LEFT JOIN LATERAL (SELECT p.provider_key FROM idemgate.payments p WHERE p.provider_key = i.first_key LIMIT 1) used
        ON true
      ON CONFLICT (merchant_id, idempotency_key) DO UPDATE SET
        fingerprint = EXCLUDED.fingerprint, state = 'PROCESSING', epoch = k.epoch + 1,
        generation = k.generation + 1, payment_id = EXCLUDED.payment_id,
        provider_key = encode(sha256(convert_to(k.merchant_id || ':' || k.idempotency_key || '#' || EXCLUDED.payment_id, 'UTF8')), 'hex'),
        lease_expires_at = EXCLUDED.lease_expires_at, amount = EXCLUDED.amount, currency = EXCLUDED.currency,
        merchant_reference = EXCLUDED.merchant_reference, description = EXCLUDED.description,
        metadata = EXCLUDED.metadata, response_status = NULL, response_body = NULL, expires_at = NULL,
        frees_at = NULL,
        inquiry_attempts = 0, next_inquiry_at = NULL, created_at = EXCLUDED.created_at, updated_at = now(),
        provider_id = EXCLUDED.provider_id,
        -- A new payment has no charge conflict; a completed record can still hold one a pod of the
        -- version before V12 left (it completes without clearing it).
        charge_conflict_reference = NULL, charge_conflict_with = NULL
      WHERE k.state = 'COMPLETED' AND greatest(k.expires_at, k.frees_at) <= now()
      RETURNING merchant_id, idempotency_key, epoch, provider_key, created_at""";

  /**
   * A PROCESSING record's age and lease left are read on PostgreSQL's clock, which wrote them, for
   * the 409's Retry-After (PaymentService); {@code next_inquiry_at} is set on a PROCESSING record
   * only by recovery's take and an operator's verdict (a claim clears it). A PENDING record's next
   * inquiry, counted from PostgreSQL's now, is its 202's Retry-After.
   */
  private static final String READ = """
      SELECT k.merchant_id, k.idempotency_key, k.fingerprint, k.state, k.response_status, k.response_body,
             k.payment_id, k.expires_at,
             floor(extract(epoch FROM now() - k.created_at) * 1000)::bigint AS age_ms,
             floor(extract(epoch FROM k.lease_expires_at - now()) * 1000)::bigint AS lease_left_ms,
             k.next_inquiry_at IS NOT NULL AS taken_over,
             floor(extract(epoch FROM k.next_inquiry_at - now()) * 1000)::bigint AS next_inquiry_in_ms
      FROM idemgate.idempotency_keys k
      JOIN unnest($1::text[], $2::text[]) AS i(merchant_id, idempotency_key)
        ON k.merchant_id = i.merchant_id AND k.idempotency_key = i.idempotency_key""";

  /**
   * The moment the key is freed and the next inquiry are PostgreSQL's {@code now()} plus durations
   * the gateway sends ({@code key_ttl_ms}, {@code next_inquiry_in_ms}), so that the statements that
   * read them (CLAIM, HELD, recovery's take and purge) compare them with the clock that wrote them.
   * {@code expires_at} is the moment the answer tells, replayed as it is.
   *
   * <p>One charge is one payment. A succeeded completion (the ones that carry a pending alternative,
   * {@code taken_body}: {@link Completion#ifChargeTaken}) whose charge id the ledger already holds as
   * another succeeded payment's of the same acquirer (a declined one's moved no money: acquirers whose
   * ids name an order's attempts answer a paid retry with the declined attempt's id) ({@code charged_as}: its ledger name or one of its earlier
   * ones, {@code $17}; another acquirer's ids may be the same text) is written as that pending
   * alternative instead: 202, no charge id in the ledger, recovery asks again later and finds the same
   * (it completes through this statement too), and reconciliation reports it stuck. The look-up is
   * V11's {@code idemgate.charge_holders}, called once per group, before any row is written: it takes
   * the lock of each charge id to check (RecoveryStore#LOCK_CHARGE's, an operator's verdict's too),
   * held until the group commits, then looks each one up in {@code payments_by_provider_reference}
   * (a lateral probe with LIMIT per succeeded payment) with a snapshot of its own, taken after the
   * locks. So a completion whose charge id another transaction is writing (another pod's group, a
   * recovery group, a verdict) waits for it to commit and then sees its ledger row; one whose charge
   * id no one else is writing takes a free lock. The locks are taken in one order, all before the
   * group locks a record: two groups do not deadlock on them. A wait counts against the statement's
   * timeout like a row lock's. A group with no succeeded completion sends {@code $18} NULL and the
   * (STRICT) function is not called. The look-up cannot see the rows of its own statement: a
   * completion whose charge id an earlier one of its group names waits a round
   * ({@link #takeOutRepeatedCharges}). Not a unique index: ledgers may already hold such pairs, and
   * one violation would fail the whole group.
   *
   * <p>Such a record keeps why it is pending, for {@code /admin/pending} and the operator who settles
   * it: the charge id the acquirer answered ({@code charge_conflict_reference}) and the payment
   * holding it ({@code charge_conflict_with}, V12). Every completion writes both, from the same row
   * of {@code i}: set with the pending alternative, NULL otherwise, so a payment completed after all
   * (its own charge id, a decline, a verdict) carries none. No parameter or statement more: the
   * charge id is {@code $11} and the holder the look-up's answer.
   * Hazard: only writers that take the charge lock are waited for. Pods of a version before V11
   * (during a rolling upgrade) complete without it, and a ledger row written by hand is seen once
   * committed, as before.
   */
  private static final String COMPLETE = """
      WITH i AS (
        -- One call for the group, before any row is written (an InitPlan); none when no completion
        -- of the group succeeded (its charge ids to check are then NULL, and the function is STRICT).
        SELECT t.*, (SELECT idemgate.charge_holders($10::text[], $17::text[], $18::text[], $4::text[]))[t.n] AS charged_as
        FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[],
                    $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[],
                    $14::timestamptz[], $15::text[], $16::bigint[]) WITH ORDINALITY
          AS t(merchant_id, idempotency_key, epoch, payment_id, state, response_status, response_body, key_ttl_ms,
               payment_status, provider, provider_reference, decline_code, next_inquiry_in_ms, told_expires_at,
               taken_body, taken_next_inquiry_in_ms, n)),
      done AS (
        UPDATE idemgate.idempotency_keys k
        SET state = CASE WHEN i.charged_as IS NULL THEN i.state ELSE 'PENDING' END,
            response_status = CASE WHEN i.charged_as IS NULL THEN i.response_status ELSE 202 END,
            response_body = CASE WHEN i.charged_as IS NULL THEN i.response_body ELSE i.taken_body END,
            expires_at = i.told_expires_at, frees_at = now() + i.key_ttl_ms * interval '1 millisecond',
            next_inquiry_at = now() + CASE WHEN i.charged_as IS NULL THEN i.next_inquiry_in_ms
                                           ELSE i.taken_next_inquiry_in_ms END * interval '1 millisecond',
            charge_conflict_reference = CASE WHEN i.charged_as IS NOT NULL THEN i.provider_reference END,
            charge_conflict_with = i.charged_as,
            updated_at = now()
        FROM i
        WHERE k.merchant_id = i.merchant_id AND k.idempotency_key = i.idempotency_key
          AND (i.epoch IS NULL OR k.epoch = i.epoch)
          AND k.payment_id = i.payment_id AND k.state IN ('PROCESSING', 'PENDING')
        RETURNING k.payment_id, k.merchant_id, k.provider_key, k.amount, k.currency, k.merchant_reference,
                  k.description, k.metadata, k.created_at,
                  CASE WHEN i.charged_as IS NULL THEN i.payment_status ELSE 'pending' END AS payment_status, i.provider,
                  CASE WHEN i.charged_as IS NULL THEN i.provider_reference END AS provider_reference, i.decline_code,
                  i.charged_as),
      ledger AS (
        INSERT INTO idemgate.payments AS p
          (id, merchant_id, provider_key, amount, currency, status, merchant_reference, description, metadata,
           provider, provider_reference, decline_code, created_at)
        SELECT payment_id, merchant_id, provider_key, amount, currency, payment_status, merchant_reference, description,
               metadata, provider, provider_reference, decline_code, created_at
        FROM done
        ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, provider_reference = EXCLUDED.provider_reference,
          decline_code = EXCLUDED.decline_code, updated_at = now())
      -- Every record written has its ledger row written (a data-modifying WITH runs to completion).
      SELECT payment_id AS id, charged_as FROM done""";

  /** Whether a key is held: a record the claim would not take over (anything but an expired completed one). */
  private static final String HELD = """
      SELECT 1 FROM idemgate.idempotency_keys
      WHERE merchant_id = $1 AND idempotency_key = $2
        AND NOT (state = 'COMPLETED' AND greatest(expires_at, frees_at) <= now())""";

  /**
   * Fenced on the payment id as well as the epoch: a key whose record was deleted (released) starts
   * again at epoch 1 when it is claimed anew, so an owner that slept through its lease, recovery's
   * release and a new claim would otherwise hold a matching epoch and delete the new claim.
   */
  private static final String RELEASE = """
      DELETE FROM idemgate.idempotency_keys
      WHERE merchant_id = $1 AND idempotency_key = $2 AND epoch = $3 AND payment_id = $4 AND state = 'PROCESSING'""";

  /**
   * A claim whose request stopped waiting for it (the statement ran past its deadline, or the
   * group's follow-up read failed), found by the payment id that only that request used. The
   * request answered 503 and never called the provider, and recovery never charges, so while the
   * record is PROCESSING no charge exists for it: deleting it frees the key for the client's retry.
   */
  private static final String RELEASE_UNANSWERED = """
      DELETE FROM idemgate.idempotency_keys
      WHERE merchant_id = $1 AND idempotency_key = $2 AND payment_id = $3 AND state = 'PROCESSING'""";

  /**
   * The ledger row, else the payment as released ({@code status} {@code not_charged}: the acquirer
   * never charged it and its key was freed), else its record while unsettled, as {@code pending}: a
   * payment answered 202 because PostgreSQL did not take its charged outcome has no ledger row until
   * that outcome is written again or recovery makes it PENDING, and its client holds its id. A
   * release moves an id from the one table to the other in one statement, so an id is in one of
   * them at most; the ledger comes first, so that the common lookup stops at its row (LIMIT)
   * without probing the other indexes (V9's for the records). A record names its provider as its
   * 202 did, by the ledger's name ({@code GatewayConfig#ledgerProvider}) made back from the claim's
   * label ({@code GatewayConfig#providerId}): {@code http <provider_name>} is the name, {@code http
   * <provider_url>} (no name set; a name has no "://") is {@code http}. The label itself told the
   * merchant the acquirer's URL.
   *
   * <p>A released payment is {@code not_charged} only while the ledger holds no payment under its
   * provider key. The retry with its key goes out under that provider key (CLAIM), so a charge of
   * the released payment that reached the acquirer after all is answered to that retry and recorded
   * as the retry's payment: the key's one charge, whichever request made it. The released payment
   * then reads as that charge, naming the payment that holds it ({@code charged_as}); "not charged"
   * would tell its client to pay again, under another key. (Before, it read not_charged for ever.)
   */
  private static final String FIND_PAYMENT = """
      SELECT id, status, amount, currency, merchant_reference, provider, provider_reference, decline_code, created_at,
             NULL::text AS charged_as
      FROM idemgate.payments WHERE id = $1 AND merchant_id = $2
      UNION ALL
      SELECT r.id, coalesce(p.status, 'not_charged'), r.amount, r.currency, r.merchant_reference, r.provider,
             p.provider_reference, p.decline_code, r.created_at, p.id
      FROM idemgate.released_payments r
      LEFT JOIN idemgate.payments p ON p.provider_key = r.provider_key AND p.merchant_id = r.merchant_id
      WHERE r.id = $1 AND r.merchant_id = $2
      UNION ALL
      SELECT payment_id, 'pending', amount, currency, merchant_reference,
             CASE WHEN provider_id LIKE 'http %://%' THEN 'http'
                  WHEN provider_id LIKE 'http %' THEN substr(provider_id, 6)
                  ELSE provider_id END,
             NULL::text, NULL::text, created_at, NULL::text
      FROM idemgate.idempotency_keys WHERE payment_id = $1 AND merchant_id = $2 AND state IN ('PROCESSING', 'PENDING')
      LIMIT 1""";

  /** Every statement of the request path, by name, for the test that checks their plans. */
  static Map<String, String> statements() {
    return Map.of("claim", CLAIM, "read", READ, "complete", COMPLETE, "held", HELD, "release", RELEASE,
        "release unanswered", RELEASE_UNANSWERED, "find payment", FIND_PAYMENT);
  }

  /** A claim that lost a race inside its group (a twin in the same group, a release between insert and read) goes again. */
  private static final int CLAIM_ATTEMPTS = 4;
  private static final int MAX_GROUP = 256;
  /** Writes of each kind waiting for a group at most (GroupCommit): about 16 MB of claims. */
  static final int MAX_QUEUED = 16_384;

  private final Pool pool;
  private final GroupSizes groupSizes;
  private final long timeoutMs;
  private final long leaseMs;
  private final String providerId;
  /** The names this acquirer's payments have in the ledger, the one a completion gives aside (COMPLETE's {@code $17}). */
  private final String[] ledgerProviders;
  /** An acquirer that answers every charge with one id would have this for every payment: one line a second. */
  private final ThrottledWarning chargeTaken = new ThrottledWarning(log);
  /** Each claim's own answer, so that a record one of them cannot read fails that claim alone (claimGroup). */
  private final GroupCommit<ClaimRequest, Future<StoreClaim>> claims;
  private final GroupCommit<PendingCompletion, Completion.Result> completions;

  /** One completion in a group; {@code epoch} null for one written over recovery's claim ({@link #completeTakenOver}). */
  private record PendingCompletion(String merchantId, IdempotencyKey key, Integer epoch, Completion completion) {}

  /** Takes out of {@code sorted} (in key order) every completion after the first of its key; empty nearly always. */
  private static Set<PendingCompletion> takeOutRepeatedKeys(List<PendingCompletion> sorted) {
    Set<PendingCompletion> repeated = Set.of();
    for (int i = sorted.size() - 1; i > 0; i--) {
      PendingCompletion p = sorted.get(i);
      PendingCompletion before = sorted.get(i - 1);
      if (p.merchantId().equals(before.merchantId()) && p.key().value().equals(before.key().value())) {
        if (repeated.isEmpty()) {
          repeated = Collections.newSetFromMap(new IdentityHashMap<>());
        }
        repeated.add(sorted.remove(i));
      }
    }
    return repeated;
  }

  /**
   * Takes out of {@code sorted} every succeeded completion after the first that names its charge id
   * (COMPLETE's probe of the ledger does not see the rows its own statement writes), adding them to
   * {@code repeated}; empty nearly always. The next round finds the first one's charge in the ledger,
   * if it was written, and the others are then left pending.
   */
  private static Set<PendingCompletion> takeOutRepeatedCharges(List<PendingCompletion> sorted,
      Set<PendingCompletion> repeated) {
    Set<String> charges = new HashSet<>();
    for (int i = 0; i < sorted.size(); i++) {
      Completion c = sorted.get(i).completion();
      if (c.ifChargeTaken() != null && !charges.add(c.providerReference())) {
        if (repeated.isEmpty()) {
          repeated = Collections.newSetFromMap(new IdentityHashMap<>());
        }
        repeated.add(sorted.remove(i--));
      }
    }
    return repeated;
  }

  /** Told the number of payments of every grouped claim and completion statement. */
  public interface GroupSizes {
    GroupSizes NONE = (operation, payments) -> { };

    /** @param operation claim or complete */
    void record(String operation, int payments);
  }

  /**
   * @param context the event loop the groups are formed on (the owning verticle's)
   * @param maxInFlight claim groups (and completion groups) at the database at once
   * @param providerId the provider this gateway charges through, stored on each claim for recovery
   */
  public IdempotencyStore(Pool pool, Context context, int maxInFlight, Duration timeout, Duration lease,
      String providerId) {
    this(pool, context, maxInFlight, timeout, lease, providerId, GroupSizes.NONE);
  }

  /** @param groupSizes told the size of every group sent (the request path's meter) */
  public IdempotencyStore(Pool pool, Context context, int maxInFlight, Duration timeout, Duration lease,
      String providerId, GroupSizes groupSizes) {
    this(pool, context, maxInFlight, timeout, lease, providerId, List.of(), groupSizes);
  }

  /**
   * @param ledgerProviders the names this acquirer's payments have in the ledger
   *     ({@code GatewayConfig#ledgerProviders}): a charge id is another payment's when a payment under
   *     one of them, or under the name a completion gives, has it
   */
  public IdempotencyStore(Pool pool, Context context, int maxInFlight, Duration timeout, Duration lease,
      String providerId, List<String> ledgerProviders, GroupSizes groupSizes) {
    this.ledgerProviders = ledgerProviders.toArray(String[]::new);
    this.groupSizes = groupSizes;
    this.pool = pool;
    this.providerId = providerId;
    this.timeoutMs = timeout.toMillis();
    this.leaseMs = lease.toMillis();
    this.claims = new GroupCommit<>(context, MAX_GROUP, maxInFlight, this::claimGroup, IdempotencyStore::changedNothing,
        MAX_QUEUED, timeout);
    this.completions = new GroupCommit<>(context, MAX_GROUP, maxInFlight, this::completeGroup,
        IdempotencyStore::changedNothing, MAX_QUEUED, timeout);
  }

  /**
   * PostgreSQL ended a grouped statement without changing anything, for a reason that lies in the
   * statement rather than in the connection: it refused a value (SQLSTATE class 22, a data
   * exception, or 23, a violated constraint), or it chose the statement as the victim of a deadlock
   * or a serialization failure (40P01, 40001: another session locked the same records in another
   * order; claim and completion groups all lock theirs in key order, so it takes a session of
   * some other kind), or it ran out of memory (53200: above all "out of shared memory", the
   * server's lock table full, which a completion group's charge locks can fill, one per distinct
   * charge id, up to 256 at once, when many pods flush groups together after a stall; also a
   * backend's own "out of memory"). Its writes are then tried one by one, so that one request's
   * value fails that request alone, not the payments beside it in the group, and a deadlock's
   * victims are written after all (a write alone waits for at most one record, so it cannot close a
   * cycle again), and a group too big for the lock table is written a charge lock at a time. Each
   * is an ERROR that ends the statement's transaction before its commit, so nothing was written.
   * Each write is tried alone once and no more (GroupCommit tries a group of one once), so a server
   * short of memory for any statement costs each write of the group one more statement, no loop.
   * Only the writing statements qualify: a claim group whose follow-up READ failed has already
   * committed its claims, and claiming them again would find them taken.
   */
  static boolean changedNothing(Throwable failure) {
    if (!(failure instanceof StoreUnavailable store
        && (store.operation().equals("claim") || store.operation().equals("complete"))
        && store.getCause() instanceof PgException pg && pg.getSqlState() != null)) {
      return false;
    }
    String state = pg.getSqlState();
    return state.startsWith("22") || state.startsWith("23") || state.equals("40P01") || state.equals("40001")
        || state.equals("53200");
  }

  /**
   * Inserts the claim (committed before any provider call), or re-claims a key whose retention
   * ran out, or reports what is already there.
   */
  public Future<StoreClaim> claim(ClaimRequest request) {
    return claim(request, CLAIM_ATTEMPTS);
  }

  private Future<StoreClaim> claim(ClaimRequest r, int attemptsLeft) {
    return claims.submit(r).recover(IdempotencyStore::unavailableIfNotSent).compose(decided -> {
      if (decided != null) {
        return decided;
      }
      return attemptsLeft > 1 ? claim(r, attemptsLeft - 1)
          : Future.failedFuture(new StoreUnavailable("claim", new IllegalStateException("claim kept losing races")));
    });
  }

  /** A write the queue gave up on before sending it is the store being unavailable, to the caller. */
  private static <T> Future<T> unavailableIfNotSent(Throwable failure) {
    return Future.failedFuture(failure instanceof GroupCommit.NotSent ? new StoreUnavailable("queue", failure) : failure);
  }

  /**
   * The one order in which every claim and completion group writes its records. Two statements
   * that lock records in the same order cannot deadlock each other, whichever instance sends them.
   */
  private static <T> Comparator<T> inKeyOrder(Function<T, String> merchantId, Function<T, IdempotencyKey> key) {
    return Comparator.comparing(merchantId).thenComparing(t -> key.apply(t).value());
  }

  private static String id(String merchantId, String key) {
    return merchantId + '\u0000' + key;
  }

  /** One statement for the group; a null result means "not decided, submit again". */
  private Future<List<Future<StoreClaim>>> claimGroup(List<ClaimRequest> group) {
    // Two claims of one key cannot go in one INSERT ... ON CONFLICT: the later ones wait a round.
    Set<String> seen = new HashSet<>();
    List<ClaimRequest> batch = new ArrayList<>(group.size());
    for (ClaimRequest r : group) {
      if (seen.add(id(r.merchantId(), r.key().value()))) {
        batch.add(r);
      }
    }
    // Rows in key order, so that two instances claiming the same keys at once lock them in the
    // same order and cannot deadlock (PostgreSQL would end one of the two after a second).
    batch.sort(inKeyOrder(ClaimRequest::merchantId, ClaimRequest::key));
    int n = batch.size();
    groupSizes.record("claim", n);
    String[] merchants = new String[n];
    String[] keys = new String[n];
    String[] fingerprints = new String[n];
    String[] paymentIds = new String[n];
    String[] firstKeys = new String[n];
    Long[] amounts = new Long[n];
    String[] currencies = new String[n];
    String[] references = new String[n];
    String[] descriptions = new String[n];
    String[] metadata = new String[n];
    for (int i = 0; i < n; i++) {
      ClaimRequest r = batch.get(i);
      merchants[i] = r.merchantId();
      keys[i] = r.key().value();
      fingerprints[i] = r.fingerprint();
      paymentIds[i] = r.paymentId();
      firstKeys[i] = ProviderKeys.of(r.merchantId(), r.key().value());
      amounts[i] = r.amount();
      currencies[i] = r.currency();
      references[i] = r.merchantReference();
      descriptions[i] = r.description();
      metadata[i] = r.metadata() == null ? null : r.metadata().encode();
    }
    Tuple params = Tuple.tuple().addLong(leaseMs).addArrayOfString(merchants).addArrayOfString(keys)
        .addArrayOfString(fingerprints).addArrayOfString(paymentIds).addArrayOfString(firstKeys)
        .addArrayOfLong(amounts).addArrayOfString(currencies).addArrayOfString(references)
        .addArrayOfString(descriptions).addArrayOfString(metadata).addString(providerId);
    long sentAt = System.nanoTime();
    return run("claim", CLAIM, params).compose(inserted -> {
      Map<String, Row> claimed = new HashMap<>();
      for (Row row : inserted) {
        claimed.put(id(row.getString("merchant_id"), row.getString("idempotency_key")), row);
      }
      List<String> readMerchants = new ArrayList<>();
      List<String> readKeys = new ArrayList<>();
      for (ClaimRequest r : group) {
        if (!claimed.containsKey(id(r.merchantId(), r.key().value()))) {
          readMerchants.add(r.merchantId());
          readKeys.add(r.key().value());
        }
      }
      Future<Map<String, Row>> existing = readMerchants.isEmpty() ? Future.succeededFuture(Map.of())
          : run("read", READ, Tuple.tuple().addArrayOfString(readMerchants.toArray(new String[0]))
              .addArrayOfString(readKeys.toArray(new String[0]))).map(rows -> {
                Map<String, Row> byId = new HashMap<>();
                rows.forEach(row -> byId.put(id(row.getString("merchant_id"), row.getString("idempotency_key")), row));
                return byId;
              });
      return existing.map(read -> {
        List<Future<StoreClaim>> results = new ArrayList<>(group.size());
        Set<String> owned = new HashSet<>();
        for (ClaimRequest r : group) {
          String id = id(r.merchantId(), r.key().value());
          Row mine = claimed.get(id);
          if (mine != null && owned.add(id)) {
            results.add(Future.succeededFuture(new StoreClaim.Claimed(r.paymentId(), mine.getString("provider_key"),
                mine.getInteger("epoch"), mine.getOffsetDateTime("created_at").toInstant(), sentAt)));
          } else if (mine != null) {
            results.add(null); // a twin in the same group: it sees the committed claim next round
          } else {
            Row row = read.get(id);
            // No row: released (NOT_ATTEMPTED) between the insert and the read; the key is free again.
            results.add(row == null ? null : decided(row, r.fingerprint()));
          }
        }
        return results;
      });
    });
  }

  /**
   * {@link #decide}, failed for a record it cannot read (a hand-made repair, a later version's): that
   * claim fails (500), and only it. Thrown, it failed the whole group, and with it the requests whose
   * claims the group had already committed, which then held their keys until recovery freed them.
   */
  private static Future<StoreClaim> decided(Row row, String fingerprint) {
    try {
      return Future.succeededFuture(decide(row, fingerprint));
    } catch (RuntimeException unreadable) {
      return Future.failedFuture(unreadable);
    }
  }

  private static StoreClaim decide(Row row, String fingerprint) {
    if (!row.getString("fingerprint").equals(fingerprint)) {
      return new StoreClaim.Mismatch(row.getString("fingerprint"));
    }
    RecordState state = RecordState.valueOf(row.getString("state"));
    if (state == RecordState.PROCESSING) {
      return new StoreClaim.InFlight(Duration.ofMillis(row.getLong("age_ms")), Duration.ofMillis(row.getLong("lease_left_ms")),
          row.getBoolean("taken_over"));
    } else if (state == RecordState.PENDING) {
      Long nextInquiryInMs = row.getLong("next_inquiry_in_ms");
      return new StoreClaim.Pending(stored(row), nextInquiryInMs == null ? Duration.ZERO : Duration.ofMillis(nextInquiryInMs));
    }
    // An expired completed key is re-claimed by the INSERT unless a twin got there first.
    return new StoreClaim.Completed(stored(row));
  }

  /** The stored response, with the expiry its first answer told (READ). */
  private static StoredResponse stored(Row row) {
    OffsetDateTime told = row.getOffsetDateTime("expires_at");
    return new StoredResponse(row.getInteger("response_status"), row.getString("response_body"),
        row.getString("payment_id"), told == null ? Instant.EPOCH : told.toInstant());
  }

  /** Writes the end state and the ledger row, fenced on (state, epoch). */
  public Future<Completion.Result> complete(String merchantId, IdempotencyKey key, int epoch, Completion c) {
    return completeGrouped(new PendingCompletion(merchantId, key, epoch, c));
  }

  /** A completion that waited a round behind another of its key in the same group ({@link #completeGroup}) goes again. */
  private Future<Completion.Result> completeGrouped(PendingCompletion p) {
    return completions.submit(p).recover(IdempotencyStore::unavailableIfNotSent)
        .compose(result -> result != null ? Future.succeededFuture(result) : completeGrouped(p));
  }

  /**
   * Writes a final answer the provider gave the request that claimed this payment, after recovery
   * took the record over (the claim's own write was FENCED: it landed after lease +
   * {@code provider_timeout}). Fenced on the payment id and on the record not being final, not on
   * the epoch: the provider's answer is the truth, and recovery's own writes are all fenced on the
   * state, so whichever lands second writes nothing; a key released and claimed again has another
   * payment id. Without it the client held a 201 while retries got 202 until recovery settled it.
   */
  public Future<Completion.Result> completeTakenOver(String merchantId, IdempotencyKey key, Completion c) {
    if (c.state() != RecordState.COMPLETED) {
      throw new IllegalArgumentException("only a final answer is written over recovery's claim");
    }
    return completeGrouped(new PendingCompletion(merchantId, key, null, c));
  }

  /**
   * Writes one completion on {@code client} (a connection in a transaction of the caller's) instead
   * of in a group, so that it commits with the caller's own statements: an operator's verdict checks
   * in the same transaction that no other payment has its charge id (RecoveryVerticle). Fenced as
   * {@link #complete} is.
   */
  public Future<Completion.Result> completeOn(SqlClient client, String merchantId, IdempotencyKey key, int epoch,
      Completion c) {
    return completeGroup(client, List.of(new PendingCompletion(merchantId, key, epoch, c))).map(results -> results.get(0));
  }

  private Future<List<Completion.Result>> completeGroup(List<PendingCompletion> group) {
    return completeGroup(pool, group);
  }

  /** One statement for the group; a null result means "not sent, submit again". */
  private Future<List<Completion.Result>> completeGroup(SqlClient client, List<PendingCompletion> group) {
    // Rows in key order, as claims are: a completion group and another instance's claim group
    // (retries of these keys, when Redis did not answer them) then lock shared records in the
    // same order and cannot deadlock.
    List<PendingCompletion> sorted = new ArrayList<>(group);
    sorted.sort(inKeyOrder(PendingCompletion::merchantId, PendingCompletion::key));
    // Two completions of one key cannot go in one statement: the UPDATE ... FROM writes the record
    // once, from whichever of them PostgreSQL joins first, and both were told RECORDED (the answer
    // is by payment id). Recovery's store can hold two: a pass's write, fenced out by an operator's
    // verdict that took the record over while the pass's inquiry ran, and the verdict's. Sorted,
    // they stand side by side, the first submitted first (the sort is stable); the later ones wait
    // a round, so that each writer is told what became of its own write.
    Set<PendingCompletion> waitingARound = takeOutRepeatedCharges(sorted, takeOutRepeatedKeys(sorted));
    int n = sorted.size();
    groupSizes.record("complete", n);
    String[] merchants = new String[n];
    String[] keys = new String[n];
    Integer[] epochs = new Integer[n];
    String[] paymentIds = new String[n];
    String[] states = new String[n];
    Integer[] statuses = new Integer[n];
    String[] bodies = new String[n];
    Long[] keyTtls = new Long[n];
    String[] paymentStatuses = new String[n];
    String[] providers = new String[n];
    String[] references = new String[n];
    String[] declines = new String[n];
    Long[] nextInquiries = new Long[n];
    OffsetDateTime[] told = new OffsetDateTime[n];
    String[] takenBodies = new String[n];
    Long[] takenNextInquiries = new Long[n];
    String[] checkedCharges = null; // stays null (nothing to check, no charge lock) when no completion succeeded
    for (int i = 0; i < n; i++) {
      PendingCompletion p = sorted.get(i);
      Completion c = p.completion();
      merchants[i] = p.merchantId();
      keys[i] = p.key().value();
      epochs[i] = p.epoch();
      paymentIds[i] = c.response().paymentId();
      states[i] = c.state().name();
      statuses[i] = c.response().status();
      bodies[i] = c.response().body();
      keyTtls[i] = c.keyTtl().toMillis();
      paymentStatuses[i] = c.paymentStatus();
      providers[i] = c.provider();
      references[i] = c.providerReference();
      declines[i] = c.declineCode();
      nextInquiries[i] = c.nextInquiryIn() == null ? null : c.nextInquiryIn().toMillis();
      told[i] = c.response().expiresAt().atOffset(ZoneOffset.UTC);
      Completion taken = c.ifChargeTaken();
      takenBodies[i] = taken == null ? null : taken.response().body();
      takenNextInquiries[i] = taken == null ? null : taken.nextInquiryIn().toMillis();
      if (taken != null) {
        checkedCharges = checkedCharges == null ? new String[n] : checkedCharges;
        checkedCharges[i] = c.providerReference();
      }
    }
    Tuple params = Tuple.tuple().addArrayOfString(merchants).addArrayOfString(keys).addArrayOfInteger(epochs)
        .addArrayOfString(paymentIds).addArrayOfString(states).addArrayOfInteger(statuses).addArrayOfString(bodies)
        .addArrayOfLong(keyTtls).addArrayOfString(paymentStatuses).addArrayOfString(providers)
        .addArrayOfString(references).addArrayOfString(declines).addArrayOfLong(nextInquiries)
        .addArrayOfOffsetDateTime(told).addArrayOfString(takenBodies).addArrayOfLong(takenNextInquiries)
        .addArrayOfString(ledgerProviders).addArrayOfString(checkedCharges);
    return run(client, "complete", COMPLETE, params).map(rows -> {
      // Each payment written, with the payment whose charge id it named (null when none).
      Map<String, String> recorded = new HashMap<>();
      rows.forEach(row -> recorded.put(row.getString("id"), row.getString("charged_as")));
      List<Completion.Result> results = new ArrayList<>(group.size());
      for (PendingCompletion p : group) { // the group's order, not the statement's
        String paymentId = p.completion().response().paymentId();
        if (waitingARound.contains(p)) {
          results.add(null); // behind another completion of its key: submitted again
        } else if (!recorded.containsKey(paymentId)) {
          results.add(Completion.Result.FENCED);
        } else if (recorded.get(paymentId) != null) {
          chargeTaken.warn("payment {}: the acquirer answered charge {}, which is already the charge of payment {}: "
              + "left pending (202), not recorded as succeeded; listed in /admin/pending (docs/operations.md)", paymentId,
              p.completion().providerReference(), recorded.get(paymentId));
          results.add(Completion.Result.CHARGE_TAKEN);
        } else {
          results.add(Completion.Result.RECORDED);
        }
      }
      return results;
    });
  }

  /**
   * What the key's record holds for payment {@code paymentId} now, as a retry's claim finds it: the
   * stored answer ({@link StoreClaim.Completed}, or the 202 of {@link StoreClaim.Pending}), or
   * {@link StoreClaim.InFlight} while it is PROCESSING; null when the key no longer holds this payment
   * (released, and perhaps claimed again since by another).
   */
  public Future<StoreClaim> recordOf(String merchantId, IdempotencyKey key, String paymentId) {
    Tuple params = Tuple.tuple().addArrayOfString(new String[] {merchantId}).addArrayOfString(new String[] {key.value()});
    return run("read", READ, params).map(rows -> {
      for (Row row : rows) {
        if (row.getString("payment_id").equals(paymentId)) {
          return decide(row, row.getString("fingerprint"));
        }
      }
      return null;
    });
  }

  /** Whether PostgreSQL holds this key, so that a request with it is a retry and not a new payment. */
  public Future<Boolean> holds(String merchantId, IdempotencyKey key) {
    return run("held", HELD, Tuple.of(merchantId, key.value())).map(rows -> rows.size() > 0);
  }

  /**
   * Deletes a claim the provider definitely never charged, so the key is free again. Fenced on the
   * epoch and the claim's payment id (see {@code RELEASE}).
   */
  public Future<Completion.Result> release(String merchantId, IdempotencyKey key, int epoch, String paymentId) {
    return run("release", RELEASE, Tuple.of(merchantId, key.value(), epoch, paymentId))
        .map(rows -> rows.rowCount() == 1 ? Completion.Result.RECORDED : Completion.Result.FENCED);
  }

  /**
   * Deletes the claim of a request that answered 503 without hearing back from its claim, if that
   * claim committed after all: true when there was one. See {@code RELEASE_UNANSWERED}.
   */
  public Future<Boolean> releaseUnanswered(String merchantId, IdempotencyKey key, String paymentId) {
    return run("release unanswered", RELEASE_UNANSWERED, Tuple.of(merchantId, key.value(), paymentId))
        .map(rows -> rows.rowCount() == 1);
  }

  /**
   * A payment as {@code GET /v1/payments/{id}} shows it, only for its own merchant: its ledger row,
   * or, for a payment whose key was released, its row as released with status {@code not_charged};
   * null when there is neither.
   */
  public Future<Row> findPayment(String merchantId, String paymentId) {
    return run("find payment", FIND_PAYMENT, Tuple.of(paymentId, merchantId))
        .map(rows -> rows.size() == 1 ? rows.iterator().next() : null);
  }

  private Future<RowSet<Row>> run(String operation, String sql, Tuple params) {
    return run(pool, operation, sql, params);
  }

  /**
   * One statement, within {@code store_timeout} in all. On the pool it is a transaction of its own,
   * sent again on a new session if its session turns out read-only ({@link Postgres#execute}); on a
   * connection ({@link #completeOn}) it is part of the caller's transaction, and is never sent again.
   */
  private Future<RowSet<Row>> run(SqlClient client, String operation, String sql, Tuple params) {
    return Postgres.execute(client, sql, params, timeoutMs)
        .timeout(timeoutMs, TimeUnit.MILLISECONDS)
        .recover(failure -> Future.failedFuture(new StoreUnavailable(operation, failure)));
  }
}
