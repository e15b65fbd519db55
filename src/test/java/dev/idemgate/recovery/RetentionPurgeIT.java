package dev.idemgate.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.ScratchDatabase;
import dev.idemgate.support.TestDb;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The retention purge against real PostgreSQL, in a database of its own (created and dropped
 * here), so that no gateway of another test purges the same keys meanwhile and the counts are
 * exact.
 */
class RetentionPurgeIT {
  private static final int BATCH = 500;

  private static Http http;
  private static ScratchDatabase scratch;
  private static TestDb db;
  private static RecoveryStore store;

  @BeforeAll
  static void ownDatabase() {
    http = new Http();
    scratch = ScratchDatabase.create(http.vertx(), "idemgate_purge");
    String url = scratch.url();
    db = new TestDb(http.vertx(), url);
    store = new RecoveryStore(db.pool(), Duration.ofSeconds(10), List.of("simulator"), Duration.ofDays(1), List.of("simulator"));
  }

  @AfterAll
  static void dropDatabase() {
    db.close();
    scratch.close();
    http.close();
  }

  @BeforeEach
  void emptyTable() {
    db.query("TRUNCATE idemgate.idempotency_keys");
  }

  @Test
  @DisplayName("one purge deletes every expired key, however many batches that takes, and keeps the rest")
  void purgeKeepsUpWithAnyBacklog() {
    // 13 batches: more than the ten a pass was allowed before.
    keys("expired", 6_400, "now() - interval '1 hour' + g * interval '1 millisecond'", "COMPLETED");
    keys("kept", 300, "now() + interval '1 hour'", "COMPLETED");
    keys("unresolved", 200, "now() - interval '1 hour'", "PENDING");
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    RetentionPurge purge = new RetentionPurge(store, BATCH, Duration.ofSeconds(60), registry);

    Http.await(purge.run());

    assertThat(count("state = 'COMPLETED' AND expires_at < now()")).isZero();
    assertThat(count("state = 'COMPLETED' AND expires_at > now()")).isEqualTo(300);
    assertThat(count("state = 'PENDING'")).as("unresolved records are recovery's, never purged").isEqualTo(200);
    assertThat(registry.get("idemgate.retention.purged").counter().count()).isEqualTo(6_400);
    assertThat(registry.get("idemgate.retention.lag").gauge().value()).isZero();
  }

  @Test
  @DisplayName("a purge out of time stops after its statement, oldest keys first, and says how far behind it is")
  void purgeOutOfTimeReportsItsLag() {
    // Numbered against their expiry, so that the table's own order would delete the wrong ones.
    keys("k", 2_000, "now() - interval '2 hours' - g * interval '1 second'", "COMPLETED");
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    RetentionPurge purge = new RetentionPurge(store, BATCH, Duration.ZERO, registry);

    Http.await(purge.run());

    assertThat(count("true")).isEqualTo(1_500);
    assertThat(db.scalar("SELECT max(idempotency_key) FROM idemgate.idempotency_keys"))
        .as("the oldest 500 went first").isEqualTo("k-001500");
    // The newest key deleted (k-001501) expired 2 h + 1,501 s ago; every key left expired later.
    assertThat(purge.lagSeconds()).isBetween(7_200L + 1_501 - 60, 7_200L + 1_501 + 60);
    assertThat(registry.get("idemgate.retention.lag").gauge().value()).isEqualTo((double) purge.lagSeconds());

    Http.await(new RetentionPurge(store, BATCH, Duration.ofSeconds(60), new SimpleMeterRegistry()).run());
    assertThat(count("true")).isZero();
  }

  /** {@code n} records keyed {@code prefix-000001} onwards; {@code g} in {@code expiresAt} is the record's number. */
  private static void keys(String prefix, int n, String expiresAt, String state) {
    db.query("INSERT INTO idemgate.idempotency_keys (merchant_id, idempotency_key, fingerprint, state, epoch, "
        + "generation, payment_id, provider_key, lease_expires_at, amount, currency, expires_at, next_inquiry_at, "
        + "created_at, provider_id) "
        + "SELECT 'm', '" + prefix + "-' || lpad(g::text, 6, '0'), 'f', '" + state + "', 1, 1, "
        + "'pay_" + prefix + "_' || g, 'pk_" + prefix + "_' || g, now(), 100, 'EUR', " + expiresAt + ", now(), now(), "
        + "'simulator' FROM generate_series(1, " + n + ") g");
  }

  private static long count(String where) {
    return (Long) db.scalar("SELECT count(*) FROM idemgate.idempotency_keys WHERE " + where);
  }
}
