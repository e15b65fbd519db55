package dev.idemgate.anomaly;

import dev.idemgate.http.ApiProblem;
import dev.idemgate.http.ErrorCode;
import dev.idemgate.http.Problems;
import dev.idemgate.http.QueryParameters;
import io.vertx.core.Future;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.Tuple;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * {@code GET /admin/anomalies} on the management port: flagged clients with their rates, every tracked
 * client's standing, and recent twin pairs by key hash, payment id and time. Mount it after the admin
 * authentication handler; it shows hashes, ids, client ids and rates only, never a key or a payload.
 * Query: {@code merchant} (one merchant's view), {@code limit} (rows per list, 1-200, default 50); any
 * other parameter, one given twice or a value out of range is refused with 400.
 */
public final class AnomalyRoutes {
  private static final int DEFAULT_LIMIT = 50;
  private static final long LEDGER_TIMEOUT_MS = 2_000;
  private static final String PAYMENTS_BY_PROVIDER_KEY =
      "SELECT provider_key, id FROM idemgate.payments WHERE provider_key = ANY($1)";

  private AnomalyRoutes() {}

  /** @param pool the management verticle's pool, used to name the payments of recent twin pairs */
  public static void mount(Router router, AnomalyMonitor monitor, Pool pool) {
    router.get("/admin/anomalies").handler(QueryParameters.only("merchant", "limit")).handler(ctx -> view(ctx, monitor, pool));
  }

  private static void view(RoutingContext ctx, AnomalyMonitor monitor, Pool pool) {
    String merchant = ctx.queryParams().get("merchant");
    int limit;
    try {
      limit = rows(ctx.queryParams().get("limit"));
    } catch (ApiProblem invalid) {
      Problems.send(ctx, invalid);
      return;
    }
    if (merchant != null && merchant.isBlank()) {
      // A query template's missing value: it was taken for none, and every merchant's view shown.
      Problems.send(ctx, new ApiProblem(ErrorCode.INVALID_REQUEST, "merchant: a merchant id, or leave it out for every merchant"));
      return;
    }
    JsonObject view = monitor.view(merchant, limit);
    namePayments(pool, view.getJsonArray("recent_twins"))
        .onComplete(named -> ctx.response().putHeader("Content-Type", "application/json")
            .putHeader("Cache-Control", "no-store").end(view.encode()));
  }

  /**
   * {@code ?limit=}: {@value #DEFAULT_LIMIT} when absent, else a whole number from 1 to
   * {@value AnomalyMonitor#RECENT_TWINS}; anything else is refused. Until it was parsed here, a limit of
   * four digits or more ({@code 1000}) was taken for none and gave 50 rows where 999 gave 200, and a
   * limit that was no number at all ({@code -5}, {@code ten}) was ignored without a word; after that,
   * 0 gave 1 row and a limit past {@value AnomalyMonitor#RECENT_TWINS} gave that many, which an operator
   * who asked for more could take for all there is.
   */
  static int rows(String raw) {
    if (raw == null) {
      return DEFAULT_LIMIT;
    }
    String digits = raw.replaceFirst("^0+(?=.)", "");
    boolean whole = !digits.isEmpty() && digits.length() <= 3 && digits.chars().allMatch(c -> c >= '0' && c <= '9');
    int rows = whole ? Integer.parseInt(digits) : 0;
    if (rows < 1 || rows > AnomalyMonitor.RECENT_TWINS) {
      throw new ApiProblem(ErrorCode.INVALID_REQUEST,
          "limit: a whole number of rows per list, 1 to " + AnomalyMonitor.RECENT_TWINS);
    }
    return rows;
  }

  /**
   * Whether a pair is a refused twin, whose request was never charged: it has no payment of its own,
   * even when its key was charged later (sent again as intended, or let through once its original
   * turned out declined), which that later request's own pair names. Until this was so, the refusal's
   * pair showed that later payment as its own.
   */
  private static boolean refused(JsonObject pair) {
    return "rejected".equals(pair.getString("outcome"));
  }

  /** Fills in payment ids from the ledger; the view is still useful without them if the ledger is slow. */
  private static Future<Void> namePayments(Pool pool, JsonArray pairs) {
    Set<String> keys = new LinkedHashSet<>();
    for (Object o : pairs) {
      JsonObject pair = (JsonObject) o;
      if (!refused(pair)) {
        keys.add(pair.getString("key_hash"));
      }
      keys.add(pair.getString("original_key_hash"));
    }
    if (keys.isEmpty()) {
      return Future.succeededFuture();
    }
    return pool.preparedQuery(PAYMENTS_BY_PROVIDER_KEY).execute(Tuple.of(keys.toArray(new String[0])))
        .timeout(LEDGER_TIMEOUT_MS, TimeUnit.MILLISECONDS)
        .map(rows -> {
          Map<String, String> ids = new HashMap<>();
          for (Row row : rows) {
            ids.put(row.getString("provider_key"), row.getString("id"));
          }
          for (Object o : pairs) {
            JsonObject pair = (JsonObject) o;
            if (!refused(pair)) {
              pair.put("payment_id", ids.get(pair.getString("key_hash")));
            }
            if (pair.getString("original_payment_id") == null) {
              pair.put("original_payment_id", ids.get(pair.getString("original_key_hash")));
            }
          }
          return (Void) null;
        })
        .otherwise(failure -> null);
  }
}
