package dev.idemgate.support;

import dev.idemgate.storage.Postgres;
import io.vertx.core.Vertx;
import io.vertx.pgclient.PgBuilder;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;

/** Direct SQL against the test database, for setting up and checking what the gateway left behind. */
public final class TestDb implements AutoCloseable {
  private final Pool pool;

  public TestDb(Vertx vertx) {
    this(vertx, TestGateway.pgUrl());
  }

  public TestDb(Vertx vertx, String pgUrl) {
    this.pool = PgBuilder.pool().connectingTo(Postgres.connectOptions(pgUrl)).using(vertx).build();
  }

  public RowSet<Row> query(String sql, Object... params) {
    return Http.await(pool.preparedQuery(sql).execute(Tuple.wrap(params)));
  }

  /** The first column of the first row. */
  public Object scalar(String sql, Object... params) {
    RowSet<Row> rows = query(sql, params);
    return rows.size() == 0 ? null : rows.iterator().next().getValue(0);
  }

  /** The state of the key's idempotency record (PROCESSING, COMPLETED, …), or null when it has none. */
  public String keyState(String merchantId, String key) {
    return (String) scalar("SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        merchantId, key);
  }

  /**
   * Holds the idempotency record's row lock ({@code SELECT … FOR UPDATE}) in a transaction of its own
   * until {@link RecordLock#close()}: the gateway's writes to that record wait behind it, as behind a
   * long transaction, a vacuum or a migration.
   */
  public RecordLock lockRecord(String merchantId, String key) {
    SqlConnection connection = Http.await(pool.getConnection());
    Http.await(connection.query("BEGIN").execute());
    Http.await(connection.preparedQuery("SELECT 1 FROM idemgate.idempotency_keys "
        + "WHERE merchant_id = $1 AND idempotency_key = $2 FOR UPDATE").execute(Tuple.of(merchantId, key)));
    return new RecordLock(connection);
  }

  /** A record's row lock; closing it (more than once is fine) ends its transaction, which wrote nothing. */
  public static final class RecordLock implements AutoCloseable {
    private SqlConnection connection;

    private RecordLock(SqlConnection connection) {
      this.connection = connection;
    }

    @Override
    public void close() {
      if (connection != null) {
        SqlConnection held = connection;
        connection = null;
        try {
          Http.await(held.query("ROLLBACK").execute());
        } finally {
          Http.await(held.close());
        }
      }
    }
  }

  public Pool pool() {
    return pool;
  }

  @Override
  public void close() {
    Http.await(pool.close());
  }
}
