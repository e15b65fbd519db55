package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import io.vertx.core.Vertx;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The session a pool opens from a pg_url with session parameters in it, on the real server. */
class PoolSessionIT {
  private static Vertx vertx;

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void stop() {
    Http.await(vertx.close());
  }

  @Test
  @DisplayName("a pg_url with fallback_application_name, options and search_path connects (the server refused "
      + "every connection that sent fallback_application_name), is named by fallback_application_name, and its "
      + "sessions keep durable commits, the server's search_path and the gateway's statement_timeout, "
      + "whatever options asks for")
  void sessionParametersOfPgUrl() {
    String url = TestGateway.pgUrl() + (TestGateway.pgUrl().contains("?") ? "&" : "?")
        + "fallback_application_name=billing-gw&search_path=nowhere"
        + "&options=-c%20synchronous_commit%3Doff%20-c%20statement_timeout%3D99";
    Pool pool = Postgres.requestPool(vertx, TestGateway.config(Map.of("IDEMGATE_PG_URL", url, "IDEMGATE_STORE_TIMEOUT", "5s")),
        1, "session-parameters-test");
    try {
      Row session = Http.await(pool.query("SELECT current_setting('application_name') AS name, "
          + "current_setting('synchronous_commit') AS sync, current_setting('statement_timeout') AS timeout, "
          + "current_setting('search_path') AS path").execute())
          .iterator().next();
      assertThat(session.getString("name")).isEqualTo("billing-gw");
      // The machine's server commits durably (the gateway's premise); the URL's off is not applied.
      assertThat(session.getString("sync")).isNotEqualTo("off");
      assertThat(session.getString("path")).isNotEqualTo("nowhere");
      assertThat(session.getString("timeout")).isEqualTo("6s");
    } finally {
      Http.await(pool.close());
    }
  }
}
