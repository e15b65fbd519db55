package dev.idemgate.http;

import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.util.AsciiString;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The Host header field of an HTTP/1.x request, checked as RFC 9112 §3.2 asks: exactly one field
 * line over HTTP/1.1 (none at all is allowed over HTTP/1.0), never two, and its value a host and an
 * optional port. Behind an ingress, a request with two Host lines is a smuggling and cache-poisoning
 * vector: a proxy and the gateway may each take a different one.
 *
 * <p>The check runs on every request, so it reads the headers as Vert.x keeps them, a Netty
 * {@link HttpHeaders} whose names are {@link AsciiString}s: one walk over the entries, no list made
 * (as {@code getAll} would) and no name turned into a String (as {@code forEach} would). Not
 * HTTP/2, whose {@code :authority} Vert.x itself checks against any {@code host} header (a
 * conflict resets the stream PROTOCOL_ERROR, RFC 9113 §8.3.1).
 */
final class HostField {
  private static final AsciiString HOST = HttpHeaderNames.HOST;
  private static final int MAX_PORT = 65_535;

  private HostField() {}

  /** Why {@code request}'s Host makes it malformed, or null when it does not (and always for HTTP/2). */
  static String problem(HttpServerRequest request) {
    HttpVersion version = request.version();
    return version == HttpVersion.HTTP_2 ? null : problem(version, request.headers());
  }

  /** {@link #problem(HttpServerRequest)} of an HTTP/1.x request of that version with those headers. */
  static String problem(HttpVersion version, MultiMap headers) {
    int lines = 0;
    CharSequence first = null;
    if (headers instanceof HttpHeaders netty) {
      Iterator<Map.Entry<CharSequence, CharSequence>> entries = netty.iteratorCharSequence();
      while (entries.hasNext()) {
        Map.Entry<CharSequence, CharSequence> entry = entries.next();
        if (HOST.contentEqualsIgnoreCase(entry.getKey()) && lines++ == 0) {
          first = entry.getValue();
        }
      }
    } else {
      List<String> values = headers.getAll(HOST);
      lines = values.size();
      first = lines == 0 ? null : values.get(0);
    }
    if (lines > 1) {
      return "the request has " + lines + " Host header field lines; send exactly one (RFC 9112 3.2)";
    }
    if (lines == 0) {
      return version == HttpVersion.HTTP_1_0 ? null : "an HTTP/1.1 request must carry a Host header field (RFC 9112 3.2)";
    }
    return isValid(first) ? null : "the Host header field must be a host name or address and an optional port "
        + "(RFC 9112 3.2), without percent-encoding";
  }

  /**
   * Whether {@code value} is {@code uri-host [ ":" port ]} (RFC 9110 §7.2, RFC 3986 §3.2.2): an IP
   * literal in brackets, or a registered name or IPv4 address, possibly empty; then, after a colon,
   * a port of up to 65535 (an empty one too). Stricter than RFC 3986 in one way: a percent-encoded
   * name is refused. No DNS name holds one, and Vert.x 5.0.7's own parser of the Host, which its
   * router runs on every HTTP/1.1 request, reads the wrong characters after a {@code %} (a
   * StringIndexOutOfBoundsException for a short value): such a request was left unanswered until the
   * idle timeout, with an ERROR line. Inside brackets it takes the characters an IPv6 or IPvFuture
   * literal may hold without checking their order.
   */
  static boolean isValid(CharSequence value) {
    int length = value.length();
    int i = 0;
    if (length > 0 && value.charAt(0) == '[') {
      i = 1;
      while (i < length && value.charAt(i) != ']') {
        char c = value.charAt(i);
        if (c != ':' && !isNameCharacter(c)) {
          return false;
        }
        i++;
      }
      if (i == 1 || i == length) {
        return false; // [] or no closing bracket
      }
      i++;
    } else {
      while (i < length && isNameCharacter(value.charAt(i))) {
        i++;
      }
    }
    if (i == length) {
      return true;
    }
    if (value.charAt(i) != ':') {
      return false;
    }
    int port = 0;
    for (i++; i < length; i++) {
      char c = value.charAt(i);
      if (c < '0' || c > '9') {
        return false;
      }
      port = port * 10 + (c - '0');
      if (port > MAX_PORT) {
        return false;
      }
    }
    return true;
  }

  /** RFC 3986's unreserved and sub-delims characters: those of a registered name, less percent-encoding. */
  private static boolean isNameCharacter(char c) {
    return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
        || c == '-' || c == '.' || c == '_' || c == '~'
        || c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' || c == '+' || c == ','
        || c == ';' || c == '=';
  }
}
