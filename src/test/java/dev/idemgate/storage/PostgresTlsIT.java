package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.ThrowawayPostgres;
import io.vertx.core.Vertx;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code pg_url} with an {@code sslmode}, against a PostgreSQL of the test's own that serves TLS
 * with a self-signed certificate, as a managed database or an operator's CA would. Before, the
 * client got no TLS options and every connection of such a URL failed (the pods stayed unready).
 */
class PostgresTlsIT {
  private static ThrowawayPostgres pg;
  private static Vertx vertx;

  @BeforeAll
  static void start() {
    pg = ThrowawayPostgres.startWithTls();
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void stop() {
    Http.await(vertx.close());
    pg.close();
  }

  /**
   * Whether the connection of a pool with the gateway's driver to {@code url} is encrypted, by the
   * server's own account.
   */
  private static boolean encrypted(String url) {
    Pool pool = Postgres.poolBuilder(TestGateway.config(Map.of())).with(new PoolOptions().setMaxSize(1))
        .connectingTo(Postgres.connectOptions(url)).using(vertx).build();
    try {
      return Http.await(pool.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").execute())
          .iterator().next().getBoolean("ssl");
    } finally {
      Http.await(pool.close());
    }
  }

  @Test
  @DisplayName("sslmode=require encrypts without checking the certificate (libpq's meaning), for the pools and for the migrations' JDBC")
  void requireEncrypts() throws Exception {
    String url = pg.url() + "?sslmode=require";
    assertThat(encrypted(url)).isTrue();
    assertThat(Postgres.jdbcUrl(url)).endsWith("?sslmode=require"); // pgJDBC's default, prefer, would fall back
    try (Connection jdbc = DriverManager.getConnection(Postgres.jdbcUrl(url), "postgres", "");
        ResultSet ssl = jdbc.createStatement().executeQuery("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")) {
      assertThat(ssl.next()).isTrue();
      assertThat(ssl.getBoolean(1)).isTrue();
    }
    Migrations.migrate(url);
  }

  @Test
  @DisplayName("sslmode=verify-full with sslrootcert checks the server against that CA and its host name; another CA is refused")
  void verifyFullChecksTheServer(@TempDir Path dir) throws Exception {
    assertThat(encrypted(pg.url() + "?sslmode=verify-full&sslrootcert=" + pg.certificate())).isTrue();
    try (Connection jdbc = DriverManager.getConnection(
        Postgres.jdbcUrl(pg.url() + "?sslmode=verify-full&sslrootcert=" + pg.certificate()), "postgres", "")) {
      assertThat(jdbc.isValid(5)).isTrue();
    }

    // A CA that did not sign the server's certificate: a certificate of another server.
    try (ThrowawayPostgres other = ThrowawayPostgres.startWithTls()) {
      Path stranger = Files.copy(other.certificate(), dir.resolve("stranger.crt"));
      assertThatThrownBy(() -> encrypted(pg.url() + "?sslmode=verify-full&sslrootcert=" + stranger))
          .as("a server the CA never signed").hasMessageContaining("SSL handshake failed");
      assertThatThrownBy(() -> encrypted(pg.url() + "?sslmode=require&sslrootcert=" + stranger))
          .as("require with a CA checks against it, as libpq does").hasMessageContaining("SSL handshake failed");
    }
  }

  @Test
  @DisplayName("sslmode=verify-ca or verify-full without sslrootcert is refused, naming what is missing")
  void verifyWithoutRootCertIsRefused() {
    for (String mode : new String[] {"verify-ca", "verify-full"}) {
      assertThatThrownBy(() -> Postgres.connectOptions(pg.url() + "?sslmode=" + mode))
          .as(mode).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("sslrootcert=");
    }
  }

  @Test
  @DisplayName("a URL without sslmode: no TLS for the pools, and none for the JDBC URL either (pgJDBC's default would try it)")
  void noSslMode() {
    assertThat(Postgres.connectOptions(TestGateway.pgUrl()).getSslOptions()).isNull();
    assertThat(Postgres.jdbcUrl("postgresql://u:p@db.example:5433/pay")).isEqualTo("jdbc:postgresql://db.example:5433/pay?sslmode=disable");
    assertThat(Postgres.jdbcUrl("postgresql://u:p@db.example:5433/pay?sslmode=disable")).endsWith("/pay?sslmode=disable");
    assertThat(Postgres.jdbcUrl("postgresql://u:p@db.example:5433/pay?sslmode=require&sslrootcert=/ca.pem"))
        .as("pgJDBC's require never checks; libpq's does with a CA").endsWith("/pay?sslmode=verify-ca&sslrootcert=%2Fca.pem");
    assertThat(Postgres.jdbcUrl("postgresql://u:p@db.example:5433/pay?sslmode=verify-full&sslrootcert=/etc/ca%20dir/ca.pem"))
        .isEqualTo("jdbc:postgresql://db.example:5433/pay?sslmode=verify-full&sslrootcert=%2Fetc%2Fca+dir%2Fca.pem");
  }
}
