package dev.idemgate.provider;

import io.netty.channel.ChannelOption;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.impl.ConnectionBase;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The standalone acquirer simulator (DESIGN §4, {@code idemgate acquirer}): a {@link SimulatedAcquirer}
 * behind the JSON-over-HTTP protocol the {@code http} connector speaks.
 *
 * <pre>
 * POST /charges   Idempotency-Key: &lt;provider key&gt;   {amount, currency, source, reference}
 *                 → 200 {id, status: succeeded|declined, decline_code, amount, currency}
 *                 → 503 before accepting (tok_provider_down): nothing recorded
 *                 → 400 / 422 for a request it cannot read: nothing recorded
 *                 tok_timeout_after_charge: recorded, then never answered (the caller times out)
 *                 tok_reset_after_charge:   recorded, then the TCP connection is reset (RST)
 * GET /charges?idempotency_key=K → {"idempotency_key": K, "requests": n, "charges": [...]}
 * GET /charges                   → {"requests": n, "charges": [... every charge, with its idempotency_key]}
 * GET /health                    → 200 {"status": "up"}
 * </pre>
 *
 * Deploy one instance: the charge log lives in this verticle and is only touched on its event loop.
 */
public final class AcquirerServer extends VerticleBase {
  private static final Logger log = LoggerFactory.getLogger(AcquirerServer.class);
  private static final long MAX_AMOUNT = 1_000_000_000_000L;

  private final int port;
  private final long latencyMs;
  private final long slowMs;
  private final boolean dedup;
  private SimulatedAcquirer acquirer;
  private HttpServer server;

  public AcquirerServer(int port, long latencyMs, long slowMs, boolean dedup) {
    this.port = port;
    this.latencyMs = latencyMs;
    this.slowMs = slowMs;
    this.dedup = dedup;
  }

  @Override
  public Future<?> start() {
    acquirer = new SimulatedAcquirer(vertx, latencyMs, slowMs, dedup);
    Router router = Router.router(vertx);
    router.post("/charges").handler(BodyHandler.create().setBodyLimit(64 * 1024)).handler(this::charge);
    router.get("/charges").handler(this::charges);
    router.get("/health").handler(ctx -> json(ctx, 200, new JsonObject().put("status", "up")));
    router.get("/settlement").handler(this::settlement);
    return vertx.createHttpServer().requestHandler(router).listen(port).onSuccess(s -> {
      server = s;
      log.info("acquirer simulator listening on port {} (dedup {}, latency {} ms)", s.actualPort(), dedup ? "on" : "off",
          latencyMs);
    });
  }

  @Override
  public Future<?> stop() {
    return server == null ? Future.succeededFuture() : server.close();
  }

  /** The port actually bound (useful when started on port 0). */
  public int actualPort() {
    return server.actualPort();
  }

  private void charge(RoutingContext ctx) {
    String providerKey = ctx.request().getHeader("Idempotency-Key");
    if (providerKey == null || providerKey.isBlank()) {
      json(ctx, 400, error("idempotency_key_missing"));
      return;
    }
    JsonObject body;
    try {
      body = ctx.body().asJsonObject();
    } catch (DecodeException | ClassCastException e) {
      json(ctx, 400, error("invalid_json"));
      return;
    }
    ChargeRequest request = parse(providerKey, body);
    if (request == null) {
      json(ctx, 422, error("invalid_charge"));
      return;
    }
    acquirer.accept(request).onSuccess(answer -> {
      if (answer instanceof SimulatedAcquirer.Answer.Accepted accepted) {
        deliver(ctx, accepted);
      } else {
        json(ctx, 503, error("acquirer_unavailable"));
      }
    }).onFailure(ctx::fail);
  }

  /**
   * The settlement file a provider would send for its charges (DESIGN §6), so that reconciliation
   * can be tried against what this acquirer really charged: {@code ?merchant=M} (the account the
   * charges belong to, default {@code demo}), {@code &plant=true} to plant discrepancies,
   * {@code &seed=N} to vary them.
   */
  private void settlement(RoutingContext ctx) {
    String merchant = ctx.queryParams().get("merchant") == null ? "demo" : ctx.queryParams().get("merchant");
    boolean plant = "true".equals(ctx.queryParams().get("plant"));
    long seed;
    try {
      seed = ctx.queryParams().get("seed") == null ? 1 : Long.parseLong(ctx.queryParams().get("seed"));
    } catch (NumberFormatException e) {
      json(ctx, 400, error("seed_not_a_number"));
      return;
    }
    java.io.StringWriter csv = new java.io.StringWriter();
    try (dev.idemgate.reconciliation.SettlementFileWriter writer = new dev.idemgate.reconciliation.SettlementFileWriter(csv,
        java.util.Map.of(), plant ? dev.idemgate.reconciliation.SettlementFileWriter.Plan.demo()
            : dev.idemgate.reconciliation.SettlementFileWriter.Plan.none(), seed, java.time.Instant.now(), w -> { })) {
      for (SimulatedAcquirer.Charge c : acquirer.charges()) {
        writer.write(new dev.idemgate.reconciliation.SettlementFileWriter.Charge(c.reference(), c.id(), c.providerKey(),
            merchant, c.amount(), c.currency(), c.status(), c.createdAt()));
      }
    } catch (java.io.IOException e) {
      ctx.fail(e);
      return;
    }
    ctx.response().putHeader("Content-Type", "text/csv; charset=utf-8").end(csv.toString());
  }

  private static ChargeRequest parse(String providerKey, JsonObject body) {
    if (body == null || !(body.getValue("amount") instanceof Number amount) || !(body.getValue("currency") instanceof String currency)
        || !(body.getValue("source") instanceof String source)) {
      return null;
    }
    long minor = amount.longValue();
    if (minor < 1 || minor > MAX_AMOUNT || minor != amount.doubleValue() || currency.length() != 3 || source.isBlank()) {
      return null;
    }
    Object reference = body.getValue("reference");
    return new ChargeRequest(providerKey, minor, currency, source, reference instanceof String s ? s : null);
  }

  private void deliver(RoutingContext ctx, SimulatedAcquirer.Answer.Accepted accepted) {
    switch (accepted.delivery()) {
      case ANSWER -> {
        SimulatedAcquirer.Charge c = accepted.charge();
        json(ctx, 200, new JsonObject().put("id", c.id()).put("status", c.status()).put("decline_code", c.declineCode())
            .put("amount", c.amount()).put("currency", c.currency()));
      }
      case LOSE_ANSWER -> {
        // Deliberately never answered: the request stays open until the caller gives up.
      }
      case RESET -> reset(ctx.request().connection());
    }
  }

  /**
   * Closes with a TCP RST rather than a FIN: SO_LINGER 0 makes the kernel drop the connection at
   * once, which is what a crashed acquirer or a middlebox looks like from the caller's side.
   */
  private static void reset(HttpConnection connection) {
    if (connection instanceof ConnectionBase base) {
      base.channel().config().setOption(ChannelOption.SO_LINGER, 0);
      base.channel().close();
    } else {
      connection.close();
    }
  }

  private void charges(RoutingContext ctx) {
    String providerKey = ctx.request().getParam("idempotency_key");
    json(ctx, 200, providerKey == null ? acquirer.allCharges() : acquirer.chargeLog(providerKey));
  }

  private static JsonObject error(String code) {
    return new JsonObject().put("error", code);
  }

  private static void json(RoutingContext ctx, int status, JsonObject body) {
    ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json").end(body.encode());
  }
}
