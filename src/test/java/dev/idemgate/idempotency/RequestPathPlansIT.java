package dev.idemgate.idempotency;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.storage.Migrations;
import dev.idemgate.storage.Postgres;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.vertx.pgclient.PgConnection;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.SqlConnection;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
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
          + "ARRAY[NULL]::bigint[], ARRAY[now()], ARRAY['{}'], ARRAY[5000]::bigint[], ARRAY['simulator'], ARRAY['ch_1']",
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
    // The functions the statements call (COMPLETE's charge look-up), reading the empty copies.
    for (Row function : db.query("SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.pronamespace = 'idemgate'::regnamespace")) {
      db.query(function.getString(0).replace("idemgate.", SCHEMA + "."));
    }
  }

  @AfterAll
  static void drop() {
    db.query("DROP SCHEMA " + SCHEMA + " CASCADE");
    db.close();
    http.close();
  }

  @Test
  @DisplayName("on empty tables, the completion's look-up of charge ids (V11's function, its own cached plan) goes "
      + "through payments' index on provider_reference")
  void chargeLookUpPlansThroughTheIndex() {
    SqlConnection connection = Http.await(db.pool().getConnection());
    try {
      Postgres.REQUEST_PATH_PLANNING.forEach((setting, value) ->
          Http.await(connection.query("SET " + setting + " = '" + value + "'").execute()));
      // auto_explain sends the plans of the queries the function runs to this session.
      List<String> plans = new CopyOnWriteArrayList<>();
      PgConnection.cast(connection).noticeHandler(notice -> plans.add(notice.getMessage()));
      for (String setting : new String[] {"LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
          "SET auto_explain.log_nested_statements = on", "SET auto_explain.log_level = 'notice'"}) {
        Http.await(connection.query(setting).execute());
      }
      Http.await(connection.query("PREPARE s_complete AS "
          + IdempotencyStore.statements().get("complete").replace("idemgate.", SCHEMA + ".")).execute());
      // Executed, not explained: the function runs only then. No record matches, nothing is written.
      for (int i = 0; i < 6; i++) { // past the five custom plans PL/pgSQL might make before a generic one
        Http.await(connection.query("EXECUTE s_complete(" + SAMPLE_PARAMETERS.get("complete") + ")").execute());
      }
      List<String> lookUps = plans.stream().filter(plan -> plan.contains(".payments p")).toList();
      assertThat(lookUps).as("plans seen:%n%s", String.join("\n\n", plans)).hasSize(6);
      assertThat(lookUps).allSatisfy(plan -> assertThat(plan).as(plan)
          .contains("Index Scan using payments_provider_reference_idx")
          .doesNotContain("Seq Scan", "Hash Join", "Merge Join", "hashed SubPlan", "Bitmap Heap Scan"));
    } finally {
      Http.await(connection.close());
    }
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
