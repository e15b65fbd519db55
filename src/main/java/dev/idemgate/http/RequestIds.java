package dev.idemgate.http;

import io.vertx.ext.web.RoutingContext;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

/** A request id per request, echoed as {@code X-Request-Id} and in every problem body. */
final class RequestIds {
  private static final String KEY = "idemgate.request_id";

  private RequestIds() {}

  static void assign(RoutingContext ctx) {
    String id = newId();
    ctx.put(KEY, id);
    ctx.response().putHeader("X-Request-Id", id);
    ctx.next();
  }

  /** Assigns an id to a request that no route handled (a path that cannot be decoded, say). */
  static void ensure(RoutingContext ctx) {
    if (ctx.get(KEY) == null && !ctx.response().headWritten()) {
      String id = newId();
      ctx.put(KEY, id);
      ctx.response().putHeader("X-Request-Id", id);
    }
  }

  static String newId() {
    return "req_" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
  }

  static String of(RoutingContext ctx) {
    String id = ctx.get(KEY);
    return id == null ? "req_unassigned" : id;
  }
}
