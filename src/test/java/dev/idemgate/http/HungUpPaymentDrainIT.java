package dev.idemgate.http;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestDb;
import dev.idemgate.support.TestGateway;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * A payment whose client hung up is no open HTTP request, so the server's drain alone does not wait
 * for it. Shutting down under it left its claim PROCESSING, and its retries at 409, until another
 * instance's recovery took it over (lease + grace), although the drain had time to finish it.
 */
class HungUpPaymentDrainIT {

  @Test
  @DisplayName("on shutdown, a payment whose client hung up is finished within the drain: COMPLETED and in the ledger, not left PROCESSING")
  void hungUpPaymentFinishesBeforeTheStoreCloses() throws Exception {
    String key = Http.newKey();
    try (Http http = new Http(); TestDb db = new TestDb(http.vertx())) {
      TestGateway gateway = TestGateway.start(Map.of("IDEMGATE_SIMULATOR_SLOW_MS", "1500"));
      try {
        String body = Http.payment(2_468, "tok_slow").encode();
        try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
          socket.getOutputStream().write(("POST /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A
              + "\r\nContent-Type: application/json\r\nIdempotency-Key: " + key + "\r\nContent-Length: " + body.length()
              + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
          socket.getOutputStream().flush();
          for (int i = 0; i < 100 && !"PROCESSING".equals(state(db, key)); i++) {
            Thread.sleep(20);
          }
          assertThat(state(db, key)).as("claimed, now at the provider").isEqualTo("PROCESSING");
        } // the client hangs up while the charge is at the provider
      } finally {
        gateway.close(); // what SIGTERM does
      }
      assertThat(state(db, key)).isEqualTo("COMPLETED");
      assertThat(db.scalar("SELECT status FROM idemgate.payments p JOIN idemgate.idempotency_keys k ON k.payment_id = p.id "
          + "WHERE k.merchant_id = $1 AND k.idempotency_key = $2", TestGateway.MERCHANT_A, key)).isEqualTo("succeeded");
    }
  }

  private static String state(TestDb db, String key) {
    return (String) db.scalar("SELECT state FROM idemgate.idempotency_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        TestGateway.MERCHANT_A, key);
  }
}
