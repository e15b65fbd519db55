package dev.idemgate.bench;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.pgclient.PgBuilder;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import io.vertx.sqlclient.Tuple;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** The ledger in the gateway's PostgreSQL: one connection, one count per storm round. */
final class PgLedger implements Ledger {
  /** The gateway's schema is fixed (Postgres.SCHEMA in the gateway), its ledger the payments table. */
  static final String TABLE = "idemgate.payments";

  /**
   * A row is the key's if it has the key's first provider key, or carries the key as its merchant
   * reference: the bench's bodies always do (PaymentTraffic), so a payment charged under another
   * provider key (a reused key's, sha256(merchant:key#payment_id)) is found too. The reference has
   * no index: this scans the ledger once per round, after the round's timing has stopped.
   */
  private static final String COUNT = "SELECT count(*) FROM " + TABLE
      + " WHERE merchant_id = $1 AND (provider_key = $2 OR merchant_reference = $3)";

  private final Pool pool;

  private PgLedger(Pool pool) {
    this.pool = pool;
  }

  /** A ledger at {@code url} ({@code postgresql://user[:password]@host:port/db}); the password may come from PGPASSWORD. */
  static PgLedger connect(Vertx vertx, String url) {
    PgConnectOptions options = PgConnectOptions.fromUri(url);
    String password = System.getenv("PGPASSWORD");
    if ((options.getPassword() == null || options.getPassword().isEmpty()) && password != null) {
      options.setPassword(password);
    }
    return new PgLedger(PgBuilder.pool().with(new PoolOptions().setMaxSize(1)).connectingTo(options).using(vertx).build());
  }

  @Override
  public Future<Long> rows(String merchant, String idempotencyKey) {
    return pool.preparedQuery(COUNT).execute(Tuple.of(merchant, providerKey(merchant, idempotencyKey), idempotencyKey))
        .map(rows -> rows.iterator().next().getLong(0));
  }

  @Override
  public Future<Void> close() {
    return pool.close();
  }

  /** The provider key of a key's first payment, as the gateway derives it (ProviderKeys.of): hex(SHA-256(merchant ":" key)). */
  static String providerKey(String merchant, String idempotencyKey) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
          .digest((merchant + ":" + idempotencyKey).getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-256", e);
    }
  }
}
