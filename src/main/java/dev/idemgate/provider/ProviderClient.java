package dev.idemgate.provider;

import dev.idemgate.config.GatewayConfig;
import io.vertx.core.Future;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.json.JsonObject;
import java.util.function.Function;

/** The API side of the event bus hop to {@link ProviderVerticle}, with a send timeout on every call. */
public final class ProviderClient {
  /** Margin over the provider timeout, so that the provider verticle answers UNKNOWN before the bus gives up. */
  private static final long BUS_MARGIN_MS = 2_000;

  private final EventBus bus;
  private final DeliveryOptions options;

  public ProviderClient(EventBus bus, GatewayConfig config) {
    this.bus = bus;
    this.options = new DeliveryOptions().setCodecName(LocalCodec.NAME)
        .setSendTimeout(config.providerTimeout().toMillis() + BUS_MARGIN_MS);
  }

  public Future<ProviderOutcome> charge(ChargeRequest request) {
    return call(ProviderVerticle.CHARGE, request, ProviderClient::outcomeOfBusFailure);
  }

  /**
   * Asks the provider what became of a charge. An inquiry that did not reach the provider says
   * nothing about the charge, so every failure here is UNKNOWN, even with nobody listening: read as
   * "not attempted", it would let recovery release a record whose charge is real (the provider
   * verticle is gone first while the gateway shuts down).
   */
  public Future<ProviderOutcome> inquire(ChargeInquiry inquiry) {
    return call(ProviderVerticle.INQUIRE, inquiry,
        failure -> new ProviderOutcome.Unknown("inquiry not answered: " + failure.getClass().getSimpleName()));
  }

  private Future<ProviderOutcome> call(String address, Object body, Function<Throwable, ProviderOutcome> onBusFailure) {
    return bus.<ProviderOutcome>request(address, body, options).map(reply -> reply.body()).otherwise(onBusFailure);
  }

  public Future<JsonObject> chargeLog(String providerKey) {
    return bus.<JsonObject>request(ProviderVerticle.CHARGE_LOG, providerKey, options).map(m -> m.body());
  }

  /** The outcome's name for a metric tag: succeeded, declined, not_attempted or unknown. */
  public static String outcomeName(ProviderOutcome outcome) {
    if (outcome instanceof ProviderOutcome.Succeeded) {
      return "succeeded";
    } else if (outcome instanceof ProviderOutcome.Declined) {
      return "declined";
    } else if (outcome instanceof ProviderOutcome.NotAttempted) {
      return "not_attempted";
    }
    return "unknown";
  }

  /** For a charge: nobody listening means nothing was sent; any other failure may hide a charge. */
  static ProviderOutcome outcomeOfBusFailure(Throwable failure) {
    if (failure instanceof ReplyException e && e.failureType() == ReplyFailure.NO_HANDLERS) {
      return new ProviderOutcome.NotAttempted("no provider verticle is running");
    }
    return new ProviderOutcome.Unknown("event bus: " + failure.getClass().getSimpleName());
  }
}
