package dev.idemgate.support;

import dev.idemgate.storage.Postgres;
import io.vertx.core.Vertx;
import io.vertx.pgclient.PgBuilder;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
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

  public Pool pool() {
    return pool;
  }

  @Override
  public void close() {
    Http.await(pool.close());
  }
}
