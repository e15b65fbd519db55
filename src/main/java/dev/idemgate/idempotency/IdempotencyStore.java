package dev.idemgate.idempotency;

import io.vertx.core.Future;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.Tuple;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.concurrent.TimeUnit;

/**
 * The idempotency records and the ledger in PostgreSQL, the source of truth. Every write is one
 * autocommit statement, and every state change after the claim is conditional on the record's
 * state and epoch (the fencing token), so an owner that lost its lease changes nothing.
 */
public final class IdempotencyStore {
  private static final String CLAIM = """
      INSERT INTO idemgate.idempotency_keys AS k
        (merchant_id, idempotency_key, fingerprint, state, epoch, generation, payment_id, provider_key,
         lease_expires_at, amount, currency, merchant_reference, description, metadata, created_at)
      VALUES ($1, $2, $3, 'PROCESSING', 1, 1, $4,
              CASE WHEN EXISTS (SELECT 1 FROM idemgate.payments WHERE provider_key = $5)
                   THEN encode(sha256(convert_to($1 || ':' || $2 || '#' || $4, 'UTF8')), 'hex') ELSE $5 END,
              now() + $6 * interval '1 millisecond',
              $7, $8, $9, $10, $11, $12)
      ON CONFLICT (merchant_id, idempotency_key) DO UPDATE SET
        fingerprint = EXCLUDED.fingerprint, state = 'PROCESSING', epoch = k.epoch + 1,
        generation = k.generation + 1, payment_id = EXCLUDED.payment_id,
        provider_key = encode(sha256(convert_to(k.merchant_id || ':' || k.idempotency_key || '#' || EXCLUDED.payment_id, 'UTF8')), 'hex'),
        lease_expires_at = EXCLUDED.lease_expires_at, amount = EXCLUDED.amount, currency = EXCLUDED.currency,
        merchant_reference = EXCLUDED.merchant_reference, description = EXCLUDED.description,
        metadata = EXCLUDED.metadata, response_status = NULL, response_body = NULL, expires_at = NULL,
        inquiry_attempts = 0, next_inquiry_at = NULL, created_at = EXCLUDED.created_at, updated_at = now()
      WHERE k.state = 'COMPLETED' AND k.expires_at <= now()
      RETURNING epoch, provider_key""";

  private static final String READ = """
      SELECT fingerprint, state, response_status, response_body, payment_id, expires_at, lease_expires_at
      FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2""";

  private static final String COMPLETE = """
      WITH done AS (
        UPDATE idemgate.idempotency_keys
        SET state = $4, response_status = $5, response_body = $6, expires_at = $7, next_inquiry_at = $12,
            updated_at = now()
        WHERE merchant_id = $1 AND idempotency_key = $2 AND epoch = $3 AND state IN ('PROCESSING', 'PENDING')
        RETURNING payment_id, merchant_id, provider_key, amount, currency, merchant_reference, description,
                  metadata, created_at)
      INSERT INTO idemgate.payments AS p
        (id, merchant_id, provider_key, amount, currency, status, merchant_reference, description, metadata,
         provider, provider_reference, decline_code, created_at)
      SELECT payment_id, merchant_id, provider_key, amount, currency, $8, merchant_reference, description,
             metadata, $9, $10, $11, created_at
      FROM done
      ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, provider_reference = EXCLUDED.provider_reference,
        decline_code = EXCLUDED.decline_code, updated_at = now()
      RETURNING p.id""";

  private static final String RELEASE = """
      DELETE FROM idemgate.idempotency_keys
      WHERE merchant_id = $1 AND idempotency_key = $2 AND epoch = $3 AND state = 'PROCESSING'""";

  private static final String FIND_PAYMENT = """
      SELECT id, status, amount, currency, merchant_reference, provider, provider_reference, decline_code, created_at
      FROM idemgate.payments WHERE id = $1 AND merchant_id = $2""";

  /** A claim lost to a concurrent release is retried; more than this many losses in a row is a bug. */
  private static final int CLAIM_ATTEMPTS = 3;

  private final Pool pool;
  private final long timeoutMs;
  private final long leaseMs;

  public IdempotencyStore(Pool pool, Duration timeout, Duration lease) {
    this.pool = pool;
    this.timeoutMs = timeout.toMillis();
    this.leaseMs = lease.toMillis();
  }

  /**
   * Inserts the claim (committed before any provider call), or re-claims a key whose retention
   * ran out, or reports what is already there.
   */
  public Future<StoreClaim> claim(ClaimRequest request) {
    return claim(request, CLAIM_ATTEMPTS);
  }

  private Future<StoreClaim> claim(ClaimRequest r, int attemptsLeft) {
    String firstProviderKey = ProviderKeys.of(r.merchantId(), r.key().value());
    Tuple params = Tuple.tuple()
        .addString(r.merchantId()).addString(r.key().value()).addString(r.fingerprint())
        .addString(r.paymentId()).addString(firstProviderKey).addLong(leaseMs)
        .addLong(r.amount()).addString(r.currency()).addString(r.merchantReference())
        .addString(r.description()).addValue(r.metadata()).addOffsetDateTime(utc(r.createdAt()));
    long sentAt = System.nanoTime();
    return run("claim", CLAIM, params).compose(rows -> {
      if (rows.size() == 1) {
        Row row = rows.iterator().next();
        return Future.succeededFuture(new StoreClaim.Claimed(r.paymentId(), row.getString("provider_key"),
            row.getInteger("epoch"), r.createdAt(), sentAt));
      }
      return run("read", READ, Tuple.of(r.merchantId(), r.key().value())).compose(existing -> {
        if (existing.size() == 0) {
          // Released between our insert and our read (NOT_ATTEMPTED): the key is free again.
          return attemptsLeft > 1 ? claim(r, attemptsLeft - 1)
              : Future.failedFuture(new StoreUnavailable("claim", new IllegalStateException("claim kept losing to releases")));
        }
        return Future.succeededFuture(decide(existing.iterator().next(), r.fingerprint()));
      });
    });
  }

  private static StoreClaim decide(Row row, String fingerprint) {
    if (!row.getString("fingerprint").equals(fingerprint)) {
      return new StoreClaim.Mismatch();
    }
    return switch (RecordState.valueOf(row.getString("state"))) {
      case PROCESSING -> new StoreClaim.InFlight(row.getOffsetDateTime("lease_expires_at").toInstant());
      case PENDING -> new StoreClaim.Pending(stored(row));
      // An expired completed key was re-claimed by the INSERT above unless a twin got there first.
      case COMPLETED -> new StoreClaim.Completed(stored(row));
    };
  }

  private static StoredResponse stored(Row row) {
    OffsetDateTime expires = row.getOffsetDateTime("expires_at");
    return new StoredResponse(row.getInteger("response_status"), row.getString("response_body"),
        row.getString("payment_id"), expires == null ? Instant.EPOCH : expires.toInstant());
  }

  /** Writes the end state and the ledger row, fenced on (state, epoch). */
  public Future<Completion.Result> complete(String merchantId, IdempotencyKey key, int epoch, Completion c) {
    Tuple params = Tuple.tuple()
        .addString(merchantId).addString(key.value()).addInteger(epoch).addString(c.state().name())
        .addInteger(c.response().status()).addString(c.response().body())
        .addOffsetDateTime(utc(c.response().expiresAt())).addString(c.paymentStatus())
        .addString(c.provider()).addString(c.providerReference()).addString(c.declineCode())
        .addOffsetDateTime(c.nextInquiryAt() == null ? null : utc(c.nextInquiryAt()));
    return run("complete", COMPLETE, params)
        .map(rows -> rows.size() == 1 ? Completion.Result.RECORDED : Completion.Result.FENCED);
  }

  /** Deletes a claim the provider definitely never charged, so the key is free again. Fenced. */
  public Future<Completion.Result> release(String merchantId, IdempotencyKey key, int epoch) {
    return run("release", RELEASE, Tuple.of(merchantId, key.value(), epoch))
        .map(rows -> rows.rowCount() == 1 ? Completion.Result.RECORDED : Completion.Result.FENCED);
  }

  /** The ledger row of a payment, only for its own merchant. */
  public Future<Row> findPayment(String merchantId, String paymentId) {
    return run("find payment", FIND_PAYMENT, Tuple.of(paymentId, merchantId))
        .map(rows -> rows.size() == 1 ? rows.iterator().next() : null);
  }

  public Future<Void> ping() {
    return run("ping", "SELECT 1", Tuple.tuple()).mapEmpty();
  }

  private Future<RowSet<Row>> run(String operation, String sql, Tuple params) {
    return pool.preparedQuery(sql).execute(params)
        .timeout(timeoutMs, TimeUnit.MILLISECONDS)
        .recover(failure -> Future.failedFuture(new StoreUnavailable(operation, failure)));
  }

  private static OffsetDateTime utc(Instant instant) {
    return instant.atOffset(ZoneOffset.UTC);
  }
}
