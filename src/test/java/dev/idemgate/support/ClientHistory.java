package dev.idemgate.support;

import dev.idemgate.support.ExactlyOnceChecker.Op;
import io.vertx.core.Future;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Records what clients saw, request by request, for {@link ExactlyOnceChecker}. Safe to use from many
 * threads and from Vert.x callbacks. A request that gets no response (timeout, reset, refused) is
 * recorded as {@link ExactlyOnceChecker.Outcome#UNKNOWN} with status 0.
 *
 * <pre>{@code
 * ClientHistory history = new ClientHistory();
 * Http.Reply reply = history.pay(http, gateway.apiPort(), TestGateway.MERCHANT_A, TestGateway.KEY_A, key, body);
 * ... ExactlyOnceChecker.check(history.ops(), ...)
 * }</pre>
 */
public final class ClientHistory {
  private final List<Op> ops = new ArrayList<>();

  /** {@code POST /pay}, waiting for the answer; returns null when no response came. */
  public Http.Reply pay(Http http, int port, String merchant, String apiKey, String idempotencyKey, JsonObject body) {
    try {
      return Http.await(payAsync(http, port, merchant, apiKey, idempotencyKey, body, Map.of()));
    } catch (AssertionError noResponse) {
      return null; // recorded by payAsync
    }
  }

  /** {@code POST /pay} without waiting; the Future fails when no response came (and that is recorded too). */
  public Future<Http.Reply> payAsync(Http http, int port, String merchant, String apiKey, String idempotencyKey,
      JsonObject body, Map<String, String> headers) {
    return http.payAsync(port, apiKey, idempotencyKey, body.encode(), headers)
        .onSuccess(reply -> add(Op.of(merchant, idempotencyKey, body, reply)))
        .onFailure(failure -> add(Op.noResponse(merchant, idempotencyKey, body)));
  }

  public synchronized void add(Op op) {
    ops.add(op);
  }

  /** A copy of everything recorded so far, in completion order. */
  public synchronized List<Op> ops() {
    return List.copyOf(ops);
  }
}
