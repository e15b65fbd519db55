package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.configuration.FluentConfiguration;
import org.flywaydb.database.postgresql.PostgreSQLConfigurationExtension;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The upgrade to V10 while a transaction that read {@code idempotency_keys} is open, as a
 * reconciliation run's is for its whole run (Reconciler reads the unsettled claims and joins the
 * records inside one transaction), or a pg_dump's. V10's {@code ALTER TABLE ... ADD COLUMN} needs
 * the table's ACCESS EXCLUSIVE lock and, without a lock_timeout, waits in the lock queue until that
 * transaction ends; every statement of the request path (claim, read, complete, held) queues behind
 * it, on every pod, old and new: each payment answers 503 after store_timeout for as long as the
 * other transaction lasts. operations.md calls it "a lock of a moment". V12 adds columns to the same
 * table the same way, so the upgrade to it is checked alike.
 */
class V10LockQueueIT {
  /** Well under store_timeout (5 s): a payment's statement must not wait for the migration. */
  private static final long REQUEST_PATH_BOUND_MS = 2_000;

  /** @param before the last migration of the release being upgraded: 9 for V10's ALTER, 11 for V12's */
  @ParameterizedTest(name = "from V{0}")
  @ValueSource(strings = {"9", "11"})
  @DisplayName("while V10 (or V12) waits for its lock behind an open transaction that read idempotency_keys, "
      + "a request-path statement on idempotency_keys still answers within 2 s")
  void requestPathDoesNotQueueBehindTheMigration(String before) throws Exception {
    String database = "idemgate_v10lock_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    try (Http http = new Http(); TestDb admin = new TestDb(http.vertx())) {
      admin.query("CREATE DATABASE " + database);
      String url = TestGateway.pgUrlOf(database);
      CompletableFuture<Integer> migration = null;
      SqlConnection reader = null;
      TestDb db = new TestDb(http.vertx(), url);
      try {
        PgConnectOptions o = Postgres.connectOptions(url);
        // The schema as the release before V10 (or V12) left it (a session lock, as Migrations takes: V9
        // builds its index CONCURRENTLY, which would wait for ever for a transaction holding the lock).
        FluentConfiguration release = Flyway.configure().dataSource(Postgres.jdbcUrl(url), o.getUser(), o.getPassword())
            .schemas(Postgres.SCHEMA).createSchemas(true).locations("classpath:db/migration").target(before);
        release.getConfigurationExtension(PostgreSQLConfigurationExtension.class).setTransactionalLock(false);
        release.load().migrate();

        // A reconciliation run's transaction: it read the records and goes on with its matching.
        reader = Http.await(db.pool().getConnection());
        Http.await(reader.query("BEGIN").execute());
        Http.await(reader.query("SELECT count(*) FROM idemgate.idempotency_keys WHERE state = 'PROCESSING'").execute());

        // A pod of the new version starts and migrates.
        migration = CompletableFuture.supplyAsync(() -> Migrations.migrate(url));
        long waitUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (((Number) db.scalar("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            + "WHERE c.relname = 'idempotency_keys' AND l.mode = 'AccessExclusiveLock' AND NOT l.granted")).longValue() == 0) {
          assertThat(System.nanoTime()).as("the migration waits for its lock").isLessThan(waitUntil);
          Thread.sleep(50);
        }

        // A payment's statement (HELD's shape) on another connection.
        long started = System.nanoTime();
        String outcome;
        try {
          Http.await(db.pool().preparedQuery("SELECT 1 FROM idemgate.idempotency_keys WHERE merchant_id = $1 "
                  + "AND idempotency_key = $2").execute(Tuple.of("m_lock", "k_lock"))
              .timeout(REQUEST_PATH_BOUND_MS, TimeUnit.MILLISECONDS));
          outcome = "answered in " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started) + " ms";
        } catch (AssertionError e) {
          outcome = "no answer within " + REQUEST_PATH_BOUND_MS + " ms (queued behind the migration's ALTER TABLE): " + e;
        }
        assertThat(outcome).as("a request-path statement while the migration waits for its lock").startsWith("answered");
      } finally {
        if (reader != null) {
          SqlConnection held = reader;
          try {
            Http.await(held.query("ROLLBACK").execute().eventually(held::close));
          } catch (AssertionError ignored) {
            // closing the pool below ends it too
          }
        }
        if (migration != null) {
          try {
            migration.get(30, TimeUnit.SECONDS);
          } catch (Exception ignored) {
            // a migration that gave up on its lock is what a fix may do
          }
        }
        db.close();
        admin.query("DROP DATABASE " + database + " WITH (FORCE)");
      }
    }
  }
}
