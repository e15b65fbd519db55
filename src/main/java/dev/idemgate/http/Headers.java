package dev.idemgate.http;

import io.vertx.core.http.HttpServerRequest;
import java.util.List;

/** Reading request headers that must come once. */
final class Headers {
  private Headers() {}

  /** The header's value, or null when it is absent or sent more than once (which one was meant is anybody's guess). */
  static String single(HttpServerRequest request, String name) {
    List<String> values = request.headers().getAll(name);
    return values.size() == 1 ? values.get(0) : null;
  }
}
