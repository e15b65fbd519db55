package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.TestGateway;
import io.vertx.pgclient.PgConnectOptions;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class PostgresTest {
  private static int connectTimeoutMs(String storeTimeout) {
    return Postgres.transportOptions(TestGateway.config(Map.of("IDEMGATE_STORE_TIMEOUT", storeTimeout))).getConnectTimeout();
  }

  @Test
  @DisplayName("the pools' TCP connect waits store_timeout, but never less than 2 s: a 10 ms store_timeout still "
      + "lets a pool reach a PostgreSQL more than 10 ms away")
  void connectTimeoutHasAFloor() {
    assertThat(connectTimeoutMs("10ms")).isEqualTo(2_000);
    assertThat(connectTimeoutMs("1999ms")).isEqualTo(2_000);
    assertThat(connectTimeoutMs("5s")).as("the default store_timeout").isEqualTo(5_000);
    assertThat(connectTimeoutMs("1m")).isEqualTo(60_000);
  }

  @Test
  @DisplayName("the options of one connection attempt are the pool's, every one (Vert.x 5.0.7's copy leaves out "
      + "useLayer7Proxy), with one server address object for the attempt's TCP connects")
  void attemptOptionsCopyEverything() {
    PgConnectOptions options = Postgres.connectOptions("postgresql://app:secret@db.example:6543/pay?sslmode=require")
        .setUseLayer7Proxy(true)
        .setProperties(Map.of("application_name", "idemgate", "statement_timeout", "6000"));
    ConnectDeadlinePgDriver.AttemptOptions attempt = new ConnectDeadlinePgDriver.AttemptOptions(options);
    assertThat(attempt.toJson()).isEqualTo(options.toJson());
    assertThat(attempt.getPreparedStatementCacheSqlFilter()).isSameAs(options.getPreparedStatementCacheSqlFilter());
    assertThat(attempt.getSocketAddress()).isEqualTo(options.getSocketAddress()).isSameAs(attempt.getSocketAddress());
  }

  @Test
  @DisplayName("of pg_url's session parameters only the application's name reaches the pools: application_name, "
      + "else fallback_application_name as libpq reads it (never sent: the server has no such setting and refused "
      + "every connection), else idemgate; options and search_path are not sent, so a URL cannot change the "
      + "sessions that claim payments (-c synchronous_commit=off); the gateway's statement_timeout and planner "
      + "settings are always sent")
  void onlyTheApplicationNameComesFromPgUrl() {
    String url = TestGateway.pgUrl() + (TestGateway.pgUrl().contains("?") ? "&" : "?")
        + "application_name=billing-gw&fallback_application_name=fb&search_path=pay"
        + "&options=-c%20synchronous_commit%3Doff";
    Map<String, String> properties = Postgres.poolConnectOptions(
        TestGateway.config(Map.of("IDEMGATE_PG_URL", url, "IDEMGATE_STORE_TIMEOUT", "5s")), Postgres.REQUEST_PATH_PLANNING)
        .getProperties();
    Map<String, String> expected = new java.util.HashMap<>(Postgres.REQUEST_PATH_PLANNING);
    expected.put("application_name", "billing-gw");
    expected.put("statement_timeout", "6000");
    assertThat(properties).isEqualTo(expected);
    assertThat(Postgres.applicationName("postgresql://u@db/pay?fallback_application_name=fb")).isEqualTo("fb");
    assertThat(Postgres.applicationName("postgresql://u@db/pay?application_name=a%20b&fallback_application_name=fb"))
        .isEqualTo("a b");
    assertThat(Postgres.applicationName("postgresql://u@db/pay")).isEqualTo("idemgate");
  }
}
