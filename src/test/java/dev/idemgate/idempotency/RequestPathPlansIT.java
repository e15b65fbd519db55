package dev.idemgate.idempotency;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.storage.Migrations;
import dev.idemgate.storage.Postgres;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.SqlConnection;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The request pool plans each statement once per connection (a generic plan), so the plan made on
 * a new deployment's empty tables is the plan forever. This checks, on empty copies of the tables
 * (a schema of its own, dropped afterwards), that every request-path statement finds its rows
 * through an index: no scan of a whole table, no hash or merge join, no sub-select hashed over a
 * whole table. (The claim's old EXISTS probe of the ledger failed this: its generic plan hashed the
 * whole payments index on every statement.)
 */
class RequestPathPlansIT {
  private static final Map<String, String> SAMPLE_PARAMETERS = Map.of(
      "claim", "30000, ARRAY['m'], ARRAY['k'], ARRAY['f'], ARRAY['pay_1'], ARRAY['pk'], ARRAY[1999]::bigint[], "
          + "ARRAY['EUR'], ARRAY[NULL]::text[], ARRAY[NULL]::text[], ARRAY[NULL]::text[], 'simulator'",
      "read", "ARRAY['m'], ARRAY['k']",
      "complete", "ARRAY['m'], ARRAY['k'], ARRAY[1], ARRAY['pay_1'], ARRAY['COMPLETED'], ARRAY[201], ARRAY['{}'], "
          + "ARRAY[86400000]::bigint[], ARRAY['succeeded'], ARRAY['simulator'], ARRAY['ch_1'], ARRAY[NULL]::text[], "
          + "ARRAY[NULL]::bigint[], ARRAY[now()], ARRAY['{}'], ARRAY[5000]::bigint[], ARRAY['simulator']",
      "held", "'m', 'k'",
      "release", "'m', 'k', 1, 'pay_1'",
      "release unanswered", "'m', 'k', 'pay_1'",
      "find payment", "'pay_1', 'm'");

  private static Http http;
  private static TestDb db;
  private static final String SCHEMA = "plans_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);

  @BeforeAll
  static void emptyTables() {
    Migrations.migrate(TestGateway.pgUrl()); // the tables to copy, when no gateway has started yet
    http = new Http();
    db = new TestDb(http.vertx());
    db.query("CREATE SCHEMA " + SCHEMA);
    for (String table : new String[] {"idempotency_keys", "payments", "released_payments"}) {
      db.query("CREATE TABLE " + SCHEMA + "." + table + " (LIKE idemgate." + table + " INCLUDING ALL)");
    }
  }

  @AfterAll
  static void drop() {
    db.query("DROP SCHEMA " + SCHEMA + " CASCADE");
    db.close();
    http.close();
  }

  @Test
  @DisplayName("on empty tables, every request-path statement's cached plan goes through an index")
  void indexPlansFromTheStart() {
    assertThat(IdempotencyStore.statements().keySet()).isEqualTo(SAMPLE_PARAMETERS.keySet());
    SqlConnection connection = Http.await(db.pool().getConnection());
    try {
      Postgres.REQUEST_PATH_PLANNING.forEach((setting, value) ->
          Http.await(connection.query("SET " + setting + " = '" + value + "'").execute()));
      IdempotencyStore.statements().forEach((name, sql) -> {
        String statement = "s_" + name.replace(' ', '_');
        Http.await(connection.query("PREPARE " + statement + " AS " + sql.replace("idemgate.", SCHEMA + ".")).execute());
        String plan = StreamSupport.stream(Http.await(connection.query(
                "EXPLAIN (VERBOSE) EXECUTE " + statement + "(" + SAMPLE_PARAMETERS.get(name) + ")").execute()).spliterator(), false)
            .map((Row row) -> row.getString(0)).collect(Collectors.joining("\n"));
        assertThat(plan).as("plan of %s:%n%s", name, plan)
            .doesNotContain("Seq Scan", "Hash Join", "Merge Join", "hashed SubPlan", "Bitmap Heap Scan");
        Http.await(connection.query("DEALLOCATE " + statement).execute());
      });
    } finally {
      Http.await(connection.close());
    }
  }
}
