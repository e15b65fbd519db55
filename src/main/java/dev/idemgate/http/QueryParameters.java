package dev.idemgate.http;

import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.json.JsonArray;
import io.vertx.ext.web.RoutingContext;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * The query of an admin endpoint, checked before any of it is read: a parameter the endpoint does
 * not take, or one it takes given more than once, is refused with 400 naming it and the parameters
 * the endpoint takes. Hazard: an endpoint reads only the names it knows, so an unknown one was
 * ignored, and {@code /admin/pending?merchant=acme} (the filter is {@code merchant_id}) listed every
 * merchant's pending payments, for an operator to resolve the wrong ones; a name given twice was
 * read as its first value. Names are matched exactly, as documented (lower case).
 */
public final class QueryParameters {
  private QueryParameters() {}

  /**
   * A handler that refuses a query naming anything but {@code accepted}, or naming one twice, and
   * passes any other request on. For an endpoint whose body may be large, call {@link #check} and
   * answer with the body unread instead: this handler answers as {@link Problems#send} does.
   */
  public static Handler<RoutingContext> only(String... accepted) {
    Set<String> names = Set.of(accepted);
    return ctx -> {
      try {
        check(ctx, names);
      } catch (ApiProblem refused) {
        Problems.send(ctx, refused);
        return;
      }
      ctx.next();
    };
  }

  /** {@link #only} for an endpoint that takes no query parameters. */
  public static Handler<RoutingContext> none() {
    return only();
  }

  /**
   * Throws the 400 for a query that names anything but {@code accepted}, names one twice, or cannot
   * be decoded (a broken percent-encoding).
   */
  public static void check(RoutingContext ctx, Set<String> accepted) {
    MultiMap query;
    try {
      query = ctx.queryParams();
    } catch (RuntimeException undecodable) {
      // Vert.x Web's 400 HttpException. Hazard: it leaves an empty map behind, so a later
      // queryParams() of this request returns no parameters (an unfiltered list) instead of failing
      // again. The request must be refused here, not passed on.
      throw new ApiProblem(ErrorCode.INVALID_REQUEST,
          "the query string could not be decoded (a broken percent-encoding); nothing was done");
    }
    Set<String> unknown = new LinkedHashSet<>();
    Set<String> repeated = new TreeSet<>();
    Set<String> seen = new TreeSet<>();
    // Entries, not names(): the map is case-insensitive, and its names would hide a second spelling.
    for (Map.Entry<String, String> parameter : query) {
      String name = parameter.getKey();
      if (!accepted.contains(name)) {
        unknown.add(name);
      } else if (!seen.add(name)) {
        repeated.add(name);
      }
    }
    if (unknown.isEmpty() && repeated.isEmpty()) {
      return;
    }
    Set<String> takes = new TreeSet<>(accepted);
    String detail = (unknown.isEmpty() ? "" : "unknown query parameter" + (unknown.size() > 1 ? "s " : " ") + quoted(unknown)
            + "; this endpoint takes " + (takes.isEmpty() ? "no query parameters" : String.join(", ", takes)) + "; ")
        + (repeated.isEmpty() ? "" : quoted(repeated) + " given more than once: give " + (repeated.size() > 1 ? "each" : "it")
            + " once; ")
        + "nothing was done";
    ApiProblem problem = new ApiProblem(ErrorCode.INVALID_REQUEST, detail)
        .with("accepted_parameters", new JsonArray(List.copyOf(takes)));
    if (!unknown.isEmpty()) {
      problem.with("unknown_parameters", new JsonArray(List.copyOf(unknown)));
    }
    if (!repeated.isEmpty()) {
      problem.with("repeated_parameters", new JsonArray(List.copyOf(repeated)));
    }
    throw problem;
  }

  private static String quoted(Set<String> names) {
    return names.stream().map(name -> "'" + name + "'").collect(Collectors.joining(", "));
  }
}
