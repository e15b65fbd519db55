package dev.idemgate.provider;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.observability.ThrottledWarning;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.circuitbreaker.CircuitBreakerState;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * "The gateway verticle": the only place that talks to the payment provider. Receives charges and
 * inquiries over the local event bus and answers each with a {@link ProviderOutcome}; the provider
 * timeout is enforced here, and past it a sent charge is {@link ProviderOutcome.Unknown}.
 * Deployed once: the simulator's charge log lives in it.
 */
public final class ProviderVerticle extends VerticleBase {
  public static final String CHARGE = "idemgate.provider.charge";
  public static final String INQUIRE = "idemgate.provider.inquire";
  public static final String CHARGE_LOG = "idemgate.provider.charge-log";

  private static final Logger log = LoggerFactory.getLogger(ProviderVerticle.class);
  private static final DeliveryOptions LOCAL = new DeliveryOptions().setCodecName(LocalCodec.NAME);

  private final GatewayConfig config;
  private final MeterRegistry registry;
  /**
   * A call the provider did not answer by provider_timeout. When one is late, all are (the event
   * loop stalled, an acquirer simulated slower than the timeout): at most one WARN a second each
   * for charges and inquiries, the rest at DEBUG, so that recovery's inquiries about a backlog of
   * pending payments do not flood the log, nor hide that charges go unanswered too.
   */
  private final ThrottledWarning chargeUnanswered = new ThrottledWarning(log);
  private final ThrottledWarning inquiryUnanswered = new ThrottledWarning(log);
  private PaymentProvider provider;
  private Gauge circuitOpen;
  private List<Meter> poolMeters = List.of();

  public ProviderVerticle(GatewayConfig config, MeterRegistry registry) {
    this.config = config;
    this.registry = registry;
  }

  @Override
  public Future<?> start() {
    provider = switch (config.provider()) {
      case "simulator" -> new SimulatorProvider(
          new SimulatedAcquirer(vertx, config.simulatorLatencyMs(), config.simulatorSlowMs(), true));
      case "http" -> HttpProvider.create(vertx, config);
      default -> throw new IllegalStateException("provider '" + config.provider() + "' is not built yet");
    };
    if (provider instanceof HttpProvider http) {
      // The gauge reads the connector, which this verticle holds (a gauge holds its object weakly).
      // Half-open reads 0: the next charge tries the acquirer. Vert.x's breaker stays half-open
      // until that call, so on a quiet pod it would read 1 for good after one blip.
      circuitOpen = Gauge.builder("idemgate.provider.circuit.open", http,
              p -> p.circuitState() == CircuitBreakerState.OPEN ? 1 : 0)
          .description("1 while the http connector's circuit breaker is open: charges are answered "
              + "not-attempted (502) without calling the acquirer; else 0 (half-open too: the next charge is tried)")
          .register(registry);
      // The pod's own limit on the acquirer (provider_max_connections): busy near the limit, or any
      // refusal, means charges queue on this pod, not at the acquirer.
      poolMeters = List.of(
          Gauge.builder("idemgate.provider.connections.busy", http, HttpProvider::busyConnections)
              .description("connections to the acquirer in use by a charge or an inquiry").register(registry),
          Gauge.builder("idemgate.provider.connections.max", http, HttpProvider::maxConnections)
              .description("provider_max_connections: connections to the acquirer this instance may open").register(registry),
          FunctionCounter.builder("idemgate.provider.pool.full", http, HttpProvider::poolFullRefusals)
              .description("charges and inquiries not sent because every connection to the acquirer stayed busy "
                  + "past the connect timeout (a charge is answered 502, nothing charged)").register(registry));
    }
    MessageConsumer<ChargeRequest> charges = vertx.eventBus().consumer(CHARGE, this::charge);
    MessageConsumer<ChargeInquiry> inquiries = vertx.eventBus().consumer(INQUIRE, this::inquire);
    MessageConsumer<String> logs = vertx.eventBus().consumer(CHARGE_LOG, this::chargeLog);
    return Future.all(charges.completion(), inquiries.completion(), logs.completion());
  }

  @Override
  public Future<?> stop() {
    if (circuitOpen != null) {
      registry.remove(circuitOpen);
    }
    poolMeters.forEach(registry::remove);
    return provider instanceof HttpProvider http ? http.close() : Future.succeededFuture();
  }

  private void charge(Message<ChargeRequest> message) {
    ChargeRequest request = message.body();
    if (!request.maySend()) {
      // The claim's lease ran out on the way here (a pause, a long queue): recovery may own the
      // record now, so sending could charge a payment the ledger has already released.
      message.reply(new ProviderOutcome.NotAttempted("lease expired before the charge was sent"), LOCAL);
      return;
    }
    answer(message, provider.charge(request), "charge", chargeUnanswered);
  }

  private void inquire(Message<ChargeInquiry> message) {
    answer(message, provider.inquire(message.body()), "inquiry", inquiryUnanswered);
  }

  private void answer(Message<?> message, Future<ProviderOutcome> call, String what, ThrottledWarning unanswered) {
    call.timeout(config.providerTimeout().toMillis(), TimeUnit.MILLISECONDS)
        .otherwise(failure -> {
          // After sending, any failure (timeout, reset, a bug) may hide a charge: never "not charged".
          unanswered.warn("provider {} ended without an answer: {}", what, failure.toString());
          return new ProviderOutcome.Unknown(failure.getClass().getSimpleName());
        })
        .onSuccess(outcome -> message.reply(outcome, LOCAL));
  }

  private void chargeLog(Message<String> message) {
    if (provider instanceof SimulatorProvider simulator) {
      message.reply(simulator.chargeLog(message.body()));
    } else {
      message.fail(404, "the charge log belongs to the simulator provider");
    }
  }
}
