package dev.idemgate.anomaly;

import io.vertx.core.json.JsonObject;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Payment bodies for anomaly tests. The merchant reference is random letters, so that no generated
 * reference can ever read as card data (random UUIDs once did, about one in 21,000).
 */
final class Orders {
  private Orders() {}

  static JsonObject payment(long amount, String source) {
    StringBuilder reference = new StringBuilder("order-");
    for (int i = 0; i < 20; i++) {
      reference.append((char) ('a' + ThreadLocalRandom.current().nextInt(26)));
    }
    return new JsonObject().put("amount", amount).put("currency", "EUR").put("source", source)
        .put("merchant_reference", reference.toString());
  }
}
