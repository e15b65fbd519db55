package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import io.vertx.pgclient.PgConnectOptions;
import java.util.UUID;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** Upgrades of a schema the gateway's role does not own, against the real server. */
class MigrationsIT {
  @Test
  @DisplayName("upgrading past V5 gives released_payments the read and insert rights each role had on the ledger, "
      + "so a gateway role with table rights only can still answer GET and release pending payments")
  void newTableGetsTheLedgersRights() {
    String suffix = UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    String database = "idemgate_migrations_" + suffix;
    String gatewayRole = "idemgate_gw_" + suffix;
    String readerRole = "idemgate_reader_" + suffix;
    try (Http http = new Http(); TestDb admin = new TestDb(http.vertx())) {
      admin.query("CREATE DATABASE " + database);
      admin.query("CREATE ROLE " + gatewayRole);
      admin.query("CREATE ROLE " + readerRole);
      try {
        String url = TestGateway.pgUrlOf(database);
        PgConnectOptions o = Postgres.connectOptions(url);
        // The schema as the release before V5 left it, its rights granted table by table.
        Flyway.configure().dataSource(Postgres.jdbcUrl(url), o.getUser(), o.getPassword()).schemas(Postgres.SCHEMA)
            .createSchemas(true).locations("classpath:db/migration").target("4").load().migrate();
        try (TestDb db = new TestDb(http.vertx(), url)) {
          db.query("GRANT USAGE ON SCHEMA idemgate TO " + gatewayRole + ", " + readerRole);
          db.query("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA idemgate TO " + gatewayRole);
          db.query("GRANT SELECT ON idemgate.payments TO " + readerRole);

          Migrations.migrate(url);

          assertThat(db.scalar("SELECT has_table_privilege($1, 'idemgate.released_payments', 'SELECT') "
              + "AND has_table_privilege($1, 'idemgate.released_payments', 'INSERT')", gatewayRole)).isEqualTo(true);
          assertThat(db.scalar("SELECT has_table_privilege($1, 'idemgate.released_payments', 'SELECT')", readerRole))
              .isEqualTo(true);
          assertThat(db.scalar("SELECT has_table_privilege($1, 'idemgate.released_payments', 'INSERT')", readerRole))
              .as("only the rights it had on the ledger").isEqualTo(false);
        }
      } finally {
        admin.query("DROP DATABASE " + database + " WITH (FORCE)");
        admin.query("DROP ROLE " + gatewayRole);
        admin.query("DROP ROLE " + readerRole);
      }
    }
  }
}
