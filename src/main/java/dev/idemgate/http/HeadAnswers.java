package dev.idemgate.http;

import io.vertx.core.Future;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import java.nio.charset.StandardCharsets;

/** Answers that GET and HEAD share, the one way both ports write them. */
final class HeadAnswers {
  private HeadAnswers() {}

  /**
   * Ends the request's response with {@code body}, or for HEAD with its length alone: Vert.x leaves a
   * HEAD answer's body out over HTTP/1.1 but sends it over HTTP/2, where a body on a HEAD stream is a
   * protocol error.
   */
  static Future<Void> end(HttpServerRequest request, String body) {
    if (request.method() == HttpMethod.HEAD) {
      return request.response().putHeader("Content-Length", String.valueOf(body.getBytes(StandardCharsets.UTF_8).length))
          .end();
    }
    return request.response().end(body);
  }
}
