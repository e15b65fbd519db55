package dev.idemgate.config;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * The query parameters of a connection URL (PostgreSQL's, Redis's), named without case as the
 * PostgreSQL client reads them.
 */
public final class UrlQuery {
  private UrlQuery() {}

  /** The URL-decoded value of the first parameter {@code name} (lower case), if any. */
  public static Optional<String> parameter(String url, String name) {
    int query = url.indexOf('?');
    if (query < 0) {
      return Optional.empty();
    }
    for (String pair : url.substring(query + 1).split("&")) {
      if (pair.toLowerCase(Locale.ROOT).startsWith(name + "=")) {
        return Optional.of(URLDecoder.decode(pair.substring(name.length() + 1), StandardCharsets.UTF_8));
      }
    }
    return Optional.empty();
  }

  /** The URL-decoded names of its parameters, as written and in order, repeats included. */
  public static List<String> names(String url) {
    int query = url.indexOf('?');
    if (query < 0) {
      return List.of();
    }
    return Arrays.stream(url.substring(query + 1).split("&")).filter(pair -> !pair.isEmpty())
        .map(pair -> URLDecoder.decode(pair.contains("=") ? pair.substring(0, pair.indexOf('=')) : pair, StandardCharsets.UTF_8))
        .toList();
  }

  /** The URL without its parameters {@code name} (lower case). */
  public static String without(String url, String name) {
    int query = url.indexOf('?');
    if (query < 0) {
      return url;
    }
    String kept = Arrays.stream(url.substring(query + 1).split("&"))
        .filter(pair -> !pair.toLowerCase(Locale.ROOT).startsWith(name + "="))
        .collect(Collectors.joining("&"));
    return kept.isEmpty() ? url.substring(0, query) : url.substring(0, query + 1) + kept;
  }
}
