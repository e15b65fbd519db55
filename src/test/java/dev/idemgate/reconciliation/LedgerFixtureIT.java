package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.TestGateway;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shared database is left as a test found it: the fixture takes away what it was used to create. */
class LedgerFixtureIT {
  @TempDir
  Path dir;

  @Test
  @DisplayName("a closed fixture leaves none of its merchants' payments, records or released payments, nor the runs "
      + "made for them, and a neighbour's rows (a prefix that reads alike to LIKE) stay")
  void closeTakesAwayOnlyItsOwnRows() throws Exception {
    try (Connection c = Jdbc.connect(TestGateway.pgUrl())) {
      String prefix;
      String neighbour;
      try (LedgerFixture ledger = new LedgerFixture()) {
        prefix = ledger.prefix;
        // The same prefix with its '_' replaced: LIKE 'prefix%' would take this merchant too.
        neighbour = prefix.substring(0, prefix.length() - 1) + "x";
        Instant day = Instant.now().truncatedTo(ChronoUnit.SECONDS).minus(Duration.ofDays(5));
        String paid = ledger.payment("m1", 1_000, "EUR", "succeeded", prefix + "ch_1", day);
        ledger.key("m1", "pay_" + prefix + "stuck", "PENDING", 500, day, day.plusSeconds(30));
        try (PreparedStatement s = c.prepareStatement("""
            INSERT INTO idemgate.released_payments (id, merchant_id, amount, currency, provider, reason, created_at)
            VALUES (?, ?, 700, 'EUR', 'simulator', 'provider_never_saw_it', now())""")) {
          s.setString(1, "pay_" + prefix + "released");
          s.setString(2, ledger.merchant("m1"));
          s.executeUpdate();
        }
        try (PreparedStatement s = c.prepareStatement("""
            INSERT INTO idemgate.payments (id, merchant_id, provider_key, amount, currency, status, provider, created_at)
            VALUES (?, ?, ?, 1, 'EUR', 'succeeded', 'simulator', now())""")) {
          s.setString(1, "pay_" + neighbour);
          s.setString(2, neighbour + "m1");
          s.setString(3, LedgerFixture.providerKey("pay_" + neighbour));
          s.executeUpdate();
        }
        Path file = dir.resolve("fixture.csv");
        Files.writeString(file, ReconciliationIT.HEADER
            + ReconciliationIT.row("s1", prefix + "ch_1", null, ledger.merchant("m1"), 1_000, "EUR", "settled", day));
        LedgerFixture.Cli cli = LedgerFixture.cli("reconcile", "--settlement", file.toString(), "--merchant-prefix",
            prefix, "--out", dir.resolve("fixture.json").toString());
        assertThat(cli.status()).as(cli.err()).isZero();
        assertThat(count(c, "SELECT count(*) FROM idemgate.payments WHERE id = ?", paid)).isEqualTo(1);
      }
      try {
        for (String table : new String[] {"payments", "idempotency_keys", "released_payments"}) {
          assertThat(count(c, "SELECT count(*) FROM idemgate." + table + " WHERE starts_with(merchant_id, ?)", prefix))
              .as(table + " of the closed fixture").isZero();
        }
        assertThat(count(c, "SELECT count(*) FROM idemgate.reconciliation_runs WHERE merchant_prefix = ?", prefix))
            .as("runs of the closed fixture").isZero();
        assertThat(count(c, "SELECT count(*) FROM idemgate.payments WHERE merchant_id = ?", neighbour + "m1"))
            .as("a neighbour's payment").isEqualTo(1);
      } finally {
        try (PreparedStatement s = c.prepareStatement("DELETE FROM idemgate.payments WHERE merchant_id = ?")) {
          s.setString(1, neighbour + "m1");
          s.executeUpdate();
        }
      }
    }
  }

  private static long count(Connection c, String sql, String value) throws Exception {
    try (PreparedStatement s = c.prepareStatement(sql)) {
      s.setString(1, value);
      try (ResultSet rs = s.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }
}
