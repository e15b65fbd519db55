package dev.idemgate.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.storage.Migrations;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.vertx.sqlclient.Row;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Recovery runs its statements every pass (5 s) on every instance, over a table that holds every
 * key retained (24 h by default): they must find the few unresolved or expired records through the
 * partial indexes, never by reading every retained key. Checked on a copy of the table (a schema of
 * its own, dropped afterwards) holding 50,000 completed keys, half of them expired, and a few
 * unresolved ones.
 */
class RecoveryPlansIT {
  private static final String SCHEMA = "recovery_plans_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
  private static final Map<String, String> STATEMENTS = Map.of(
      "summary", RecoveryStore.PENDING_SUMMARY,
      "take due", RecoveryStore.TAKE_DUE.replace("$1", "100").replace("$2", "0").replace("$3", "30000")
          .replace("$4", "ARRAY['simulator']"),
      "take expired claims", RecoveryStore.TAKE_EXPIRED_CLAIMS.replace("$1", "100").replace("$2", "0").replace("$3", "30000")
          .replace("$4", "ARRAY['simulator']"),
      "list", RecoveryStore.PENDING_LIST.replace("$1", "100").replace("$2", "86400000").replace("$3", "NULL")
          .replace("$4", "NULL"),
      "list of a merchant", RecoveryStore.PENDING_LIST.replace("$1", "100").replace("$2", "86400000").replace("$3", "'m'")
          .replace("$4", "NULL"),
      "purge", RecoveryStore.PURGE_EXPIRED.replace("$1", "500"),
      "take pending", RecoveryStore.TAKE_PENDING.replace("$1", "'pay_5000'").replace("$2", "15000")
          .replace("$3", "50000").replace("$4", "ARRAY['simulator']").replace("$5", "11000"),
      "pending since", RecoveryStore.PENDING_SINCE.replace("$1", "'pay_5000'").replace("$2", "ARRAY['simulator']")
          .replace("$3", "11000"),
      "charged as", RecoveryStore.CHARGED_AS.replace("$1", "'ch_5000'").replace("$2", "'pay_5000'")
          .replace("$3", "ARRAY['simulator']"),
      "hand back", RecoveryStore.HAND_BACK.replace("$1", "'m_1'").replace("$2", "'key_5000'").replace("$3", "2")
          .replace("$4", "'pay_5000'"));

  private static Http http;
  private static TestDb db;

  @BeforeAll
  static void bigTable() {
    Migrations.migrate(TestGateway.pgUrl());
    http = new Http();
    db = new TestDb(http.vertx());
    db.query("CREATE SCHEMA " + SCHEMA);
    db.query("CREATE TABLE " + SCHEMA + ".idempotency_keys (LIKE idemgate.idempotency_keys INCLUDING ALL)");
    db.query("INSERT INTO " + SCHEMA + ".idempotency_keys (merchant_id, idempotency_key, fingerprint, state, epoch, "
        + "generation, payment_id, provider_key, lease_expires_at, amount, currency, expires_at, next_inquiry_at, "
        + "created_at, provider_id) "
        + "SELECT 'm', 'k' || g, 'f', CASE WHEN g % 5000 = 0 THEN 'PENDING' WHEN g % 7000 = 0 THEN 'PROCESSING' "
        + "ELSE 'COMPLETED' END, 1, 1, 'pay_' || g, 'pk' || g, now() - interval '1 minute', 100, 'EUR', "
        + "CASE WHEN g % 2 = 0 THEN now() - interval '1 hour' ELSE now() + interval '1 day' END, now(), now(), "
        + "'simulator' FROM generate_series(1, 50000) g");
    db.query("ANALYZE " + SCHEMA + ".idempotency_keys");
    db.query("CREATE TABLE " + SCHEMA + ".payments (LIKE idemgate.payments INCLUDING ALL)");
    db.query("INSERT INTO " + SCHEMA + ".payments (id, merchant_id, provider_key, amount, currency, status, provider, "
        + "provider_reference, created_at) SELECT 'pay_' || g, 'm', 'pk' || g, 100, 'EUR', 'succeeded', 'simulator', "
        + "'ch_' || g, now() FROM generate_series(1, 50000) g");
    db.query("ANALYZE " + SCHEMA + ".payments");
  }

  @AfterAll
  static void drop() {
    db.query("DROP SCHEMA " + SCHEMA + " CASCADE");
    db.close();
    http.close();
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"summary", "take due", "take expired claims", "list", "list of a merchant", "purge", "take pending", "pending since", "hand back", "charged as"})
  @DisplayName("recovery's statement reads the unresolved records through an index, never every retained key")
  void noScanOfRetainedKeys(String statement) {
    String plan = plan(STATEMENTS.get(statement));
    assertThat(plan).as(plan).doesNotContain("Seq Scan");
  }

  @Test
  @DisplayName("the purge walks the retention index from its oldest entry and stops at its batch, however many keys expired")
  void purgeReadsOnlyItsBatch() {
    String plan = plan(STATEMENTS.get("purge"));
    // The copy's index on expires_at (the retention index) has a name of PostgreSQL's choosing.
    assertThat(plan).as(plan).containsPattern("Index Scan using \\S*expires_at\\S*")
        .contains("Index Cond: (expires_at < now())")
        // A bitmap scan reads every expired entry before the limit; a sort, every expired row.
        .doesNotContain("Bitmap").doesNotContain("Sort").doesNotContain("Seq Scan");
  }

  private static String plan(String statement) {
    String sql = statement.replace("idemgate.", SCHEMA + ".");
    return StreamSupport.stream(db.query("EXPLAIN " + sql).spliterator(), false)
        .map(Row::toJson).map(row -> row.getString("QUERY PLAN")).collect(Collectors.joining("\n"));
  }
}
