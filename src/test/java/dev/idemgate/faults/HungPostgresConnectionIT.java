package dev.idemgate.faults;

import static dev.idemgate.support.TestGateway.KEY_A;
import static dev.idemgate.support.TestGateway.MERCHANT_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.idempotency.ProviderKeys;
import dev.idemgate.support.Http;
import dev.idemgate.support.ProxiedPostgres;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.Future;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * PostgreSQL connections that stop answering without being closed (a host gone without a reset, a
 * proxy whose server is gone, a network that drops packets: a FaultProxy freezing the open
 * connections while new ones pass) must not keep the gateway on them. A statement sent on such a
 * connection is never answered, so the pool never gets the connection back: once every connection of
 * the request pool had carried one, every payment waited for a connection and was answered 503 for as
 * long as TCP kept the dead connections (about 15 minutes when the host is gone; for ever when a live
 * proxy or load balancer holds them), though PostgreSQL could be reached on new connections.
 */
class HungPostgresConnectionIT {
  private static final int POOL_SIZE = 4;

  @Test
  @DisplayName("after its PostgreSQL connections hang without closing, payments are charged again within seconds, "
      + "on new connections; none is charged twice")
  void hungConnectionsAreLeft() {
    try (ProxiedPostgres postgres = ProxiedPostgres.start();
         Http http = new Http(); TestDb db = new TestDb(http.vertx());
         TestGateway gateway = TestGateway.start(Map.of(
             "IDEMGATE_PG_URL", postgres.url(),
             "IDEMGATE_STORE_TIMEOUT", "1s",
             "IDEMGATE_PG_POOL_SIZE", String.valueOf(POOL_SIZE),
             "IDEMGATE_REPLAY_CACHE_ENTRIES", "0"))) {
      Http.Reply paid = http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(700, "tok_visa"));
      assertThat(paid.status()).isEqualTo(201);
      // Every connection of the request pool open, as under load: reads of the payment, slowed down
      // so that they overlap, each take one. With a connection to spare, the pool would open it
      // for the next statement and get past the hang by itself.
      // (A read that waited past store_timeout for a connection being opened gets 503; the
      // connection still joins the pool.)
      postgres.proxy().latency(100);
      List<Future<Http.Reply>> reads = new ArrayList<>();
      for (int i = 0; i < 3 * POOL_SIZE; i++) {
        reads.add(http.vertx().executeBlocking(() -> http.get(gateway.apiPort(), paid.header("Location"), KEY_A)));
      }
      reads.forEach(read -> assertThat(Http.await(read).status()).isIn(200, 503));
      postgres.proxy().latency(0);
      Waits.sleep(1_000);
      long connectionsBefore = postgres.proxy().acceptedConnections();
      assertThat(postgres.proxy().openConnections()).as("the request pool's connections open")
          .isGreaterThanOrEqualTo(POOL_SIZE);

      postgres.proxy().freezeOpen();
      long frozenAt = System.nanoTime();

      List<String> keys = new ArrayList<>();
      int status = 0;
      while (status != 201 && System.nanoTime() - frozenAt < 30_000_000_000L) {
        String key = Http.newKey();
        keys.add(key);
        status = http.pay(gateway.apiPort(), KEY_A, key, Http.payment(800, "tok_visa")).status();
        assertThat(status).as("while the connections hang: 503, or 202 for a charge whose outcome PostgreSQL did not "
            + "take").isIn(201, 202, 503);
      }
      System.out.printf("a payment charged again %.1f s after the PostgreSQL connections hung (store_timeout 1s), "
          + "%d tries%n", (System.nanoTime() - frozenAt) / 1e9, keys.size());
      assertThat(status).as("a payment was charged again within 30 s of the freeze").isEqualTo(201);
      assertThat(postgres.proxy().acceptedConnections()).as("on new connections").isGreaterThan(connectionsBefore);

      for (String key : keys) {
        assertThat(db.scalar("SELECT count(*) FROM idemgate.payments WHERE provider_key = $1",
            ProviderKeys.of(MERCHANT_A, key))).as("ledger rows of key %s", key).isIn(0L, 1L);
      }
    }
  }
}
