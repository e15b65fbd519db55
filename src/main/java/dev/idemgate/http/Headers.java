package dev.idemgate.http;

import io.vertx.core.http.HttpServerRequest;
import java.util.List;
import java.util.Locale;

/** Reading request headers that must come once, and those that say how a JSON body is sent. */
final class Headers {
  private Headers() {}

  /** The header's value, or null when it is absent or sent more than once (which one was meant is anybody's guess). */
  static String single(HttpServerRequest request, String name) {
    List<String> values = request.headers().getAll(name);
    return values.size() == 1 ? values.get(0) : null;
  }

  /**
   * Why a JSON body sent with these headers cannot be read (415), or null when it can: it must be
   * declared {@code application/json}, once, in UTF-8 and uncompressed.
   */
  static ApiProblem unreadableJson(HttpServerRequest request) {
    // Sent twice, which type was meant is a guess (single gives null, refused below).
    String type = single(request, "Content-Type");
    String[] parts = type == null ? new String[] {""} : type.split(";");
    if (!parts[0].trim().toLowerCase(Locale.ROOT).equals("application/json")) {
      return new ApiProblem(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json");
    }
    // JSON is UTF-8 (RFC 8259 §8.1): a body declared in another charset would be misread as UTF-8.
    for (int i = 1; i < parts.length; i++) {
      String[] parameter = parts[i].split("=", 2);
      if (parameter[0].trim().equalsIgnoreCase("charset") && (parameter.length < 2
          || !parameter[1].trim().replace("\"", "").equalsIgnoreCase("utf-8"))) {
        return new ApiProblem(ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            "send the body as UTF-8: Content-Type: application/json, or with charset=utf-8");
      }
    }
    String encoding = request.getHeader("Content-Encoding");
    if (encoding != null && !encoding.trim().equalsIgnoreCase("identity")) {
      return new ApiProblem(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send the body uncompressed: no Content-Encoding is supported");
    }
    return null;
  }
}
