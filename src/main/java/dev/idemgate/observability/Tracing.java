package dev.idemgate.observability;

import dev.idemgate.config.GatewayConfig;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import io.opentelemetry.exporter.otlp.http.trace.OtlpHttpSpanExporter;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.export.BatchSpanProcessor;
import io.vertx.core.Future;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * OpenTelemetry tracing. Vert.x makes the server span of each request (and propagates W3C trace
 * context); the payment path adds one child span each for the Redis gate, the store calls and the
 * provider call, named {@code idemgate.*}. Off unless {@code tracing: otlp}, so the hot path pays
 * nothing by default (the no-op tracer).
 */
public final class Tracing {
  private final Tracer tracer;

  public Tracing(OpenTelemetry openTelemetry) {
    this.tracer = openTelemetry.getTracer("idemgate");
  }

  /**
   * The SDK exporting over OTLP/HTTP (protobuf) to {@code otlp_endpoint}, or empty when tracing is
   * off; the caller shuts it down, which sends the spans still buffered. OTLP/HTTP, not gRPC: the
   * only exporter sender on the classpath is the JDK's HTTP client (no OkHttp, no grpc-java), and
   * the gRPC exporter found no sender and failed start-up.
   */
  public static Optional<OpenTelemetrySdk> fromConfig(GatewayConfig config) {
    if (!config.tracing().equals("otlp")) {
      return Optional.empty();
    }
    OtlpHttpSpanExporter exporter = OtlpHttpSpanExporter.builder().setEndpoint(tracesUrl(config.otlpEndpoint())).build();
    SdkTracerProvider provider = SdkTracerProvider.builder()
        .setResource(Resource.getDefault().merge(Resource.create(Attributes.of(
            io.opentelemetry.api.common.AttributeKey.stringKey("service.name"), "idemgate"))))
        .addSpanProcessor(BatchSpanProcessor.builder(exporter).build())
        .build();
    return Optional.of(OpenTelemetrySdk.builder().setTracerProvider(provider).build());
  }

  /**
   * The collector's URL for spans: {@code otlp_endpoint} as given when it names a path, else with
   * OTLP/HTTP's standard {@code /v1/traces} (a collector's address is usually given bare).
   */
  static String tracesUrl(String endpoint) {
    String path = java.net.URI.create(endpoint).getRawPath();
    if (path == null || path.isEmpty() || path.equals("/")) {
      return endpoint.replaceFirst("/?$", "") + "/v1/traces";
    }
    return endpoint;
  }

  /** Runs {@code call} inside a child span of the current request's span. */
  public <T> Future<T> span(String name, Supplier<Future<T>> call) {
    Span span = tracer.spanBuilder(name).setParent(Context.current()).startSpan();
    Future<T> result;
    try (Scope ignored = span.makeCurrent()) {
      result = call.get();
    }
    return result.onComplete(done -> {
      if (done.failed()) {
        span.setStatus(StatusCode.ERROR, done.cause().getClass().getSimpleName());
      }
      span.end();
    });
  }

  /** The current trace id for log lines, or null outside a sampled trace. */
  public static String currentTraceId() {
    SpanContext context = Span.current().getSpanContext();
    return context.isValid() ? context.getTraceId() : null;
  }
}
