package dev.idemgate.anomaly;

import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;

/**
 * {@code GET /admin/anomalies} on the management port: flagged clients with their rates, every tracked
 * client's standing, and recent twin pairs by key hash and time. Mount it after the admin
 * authentication handler; it shows hashes, client ids and rates only, never a key or a payload.
 * Query: {@code merchant} (one merchant's view), {@code limit} (rows per list, 1-200, default 50).
 */
public final class AnomalyRoutes {
  private static final int DEFAULT_LIMIT = 50;

  private AnomalyRoutes() {}

  public static void mount(Router router, AnomalyMonitor monitor) {
    router.get("/admin/anomalies").handler(ctx -> view(ctx, monitor));
  }

  private static void view(RoutingContext ctx, AnomalyMonitor monitor) {
    String merchant = ctx.queryParams().get("merchant");
    int limit = DEFAULT_LIMIT;
    String rawLimit = ctx.queryParams().get("limit");
    if (rawLimit != null && rawLimit.matches("\\d{1,3}")) {
      limit = Math.max(1, Math.min(AnomalyMonitor.RECENT_TWINS, Integer.parseInt(rawLimit)));
    }
    ctx.response().putHeader("Content-Type", "application/json").putHeader("Cache-Control", "no-store")
        .end(monitor.view(merchant == null || merchant.isBlank() ? null : merchant, limit).encode());
  }
}
