package dev.idemgate.observability;

import dev.idemgate.auth.CredentialScanner;
import io.vertx.core.Context;
import io.vertx.core.json.JsonObject;
import io.vertx.core.spi.VertxTracerFactory;
import io.vertx.core.spi.tracing.SpanKind;
import io.vertx.core.spi.tracing.TagExtractor;
import io.vertx.core.spi.tracing.VertxTracer;
import io.vertx.core.tracing.TracingOptions;
import io.vertx.core.tracing.TracingPolicy;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;

/**
 * Vert.x's tracing with the query left out of every span, and the method and path held as the access
 * log holds them. Vert.x tags an HTTP request's span with the full URL ({@code http.url}) and the
 * query ({@code url.query}), and a query can carry what must not leave the process: a raw
 * idempotency key in {@code /admin/simulator/charges?idempotency_key=}, a provider key in the
 * acquirer inquiry {@code GET /charges?idempotency_key=}, whatever a client puts in one. Spans keep
 * {@code url.path}; a URL tag loses everything from its {@code ?}, and {@code url.query} is not sent
 * at all. A server span is named after the request's method and tagged with it and the path, each
 * whatever a client sent ({@link LoggableRequest}): a card number in either is sent as
 * {@code redacted:card_number}, and so is a URL tag that holds one; a credential in any of them (an
 * API key in force, the admin token: {@link CredentialScanner}) as what it is kept as.
 */
public final class PathOnlyTracing implements VertxTracerFactory {
  private static final Set<String> URL_TAGS = Set.of("http.url", "url.full");
  private static final Set<String> METHOD_TAGS = Set.of("http.method", "http.request.method");
  private static final Set<String> PATH_TAGS = Set.of("url.path", "http.target");
  private static final String QUERY_TAG = "url.query";

  private final VertxTracerFactory tracing;
  private final CredentialScanner credentials;

  /**
   * @param tracing the factory whose tracer makes and sends the spans (OpenTelemetry's)
   * @param credentials what no tag may hold
   */
  public PathOnlyTracing(VertxTracerFactory tracing, CredentialScanner credentials) {
    this.tracing = tracing;
    this.credentials = credentials;
  }

  @Override
  @SuppressWarnings({"rawtypes", "unchecked"})
  public VertxTracer tracer(TracingOptions options) {
    return new Tracer(tracing.tracer(options), credentials);
  }

  @Override
  public TracingOptions newOptions() {
    return tracing.newOptions();
  }

  @Override
  public TracingOptions newOptions(JsonObject json) {
    return tracing.newOptions(json);
  }

  /**
   * The tags of {@code tags} without the query (a URL cut at its {@code ?}, the query tag left out),
   * the method and path as {@link LoggableRequest} holds them.
   */
  static <T> TagExtractor<T> withoutQuery(TagExtractor<T> tags, CredentialScanner credentials) {
    return new TagExtractor<>() {
      @Override
      public int len(T obj) {
        int kept = 0;
        for (int i = 0; i < tags.len(obj); i++) {
          if (!QUERY_TAG.equals(tags.name(obj, i))) {
            kept++;
          }
        }
        return kept;
      }

      @Override
      public String name(T obj, int index) {
        return tags.name(obj, source(obj, index));
      }

      @Override
      public String value(T obj, int index) {
        int i = source(obj, index);
        String name = tags.name(obj, i);
        String value = tags.value(obj, i);
        if (value == null) {
          return null;
        } else if (METHOD_TAGS.contains(name)) {
          return LoggableRequest.method(value, credentials, null);
        } else if (PATH_TAGS.contains(name)) {
          return LoggableRequest.path(value, credentials, null);
        } else if (URL_TAGS.contains(name)) {
          int query = value.indexOf('?');
          String url = query < 0 ? value : value.substring(0, query);
          String redacted = LoggableRequest.redaction(url, credentials, null);
          return redacted != null ? redacted : url;
        }
        return value;
      }

      /** The index in {@code tags} of the {@code index}th tag kept. */
      private int source(T obj, int index) {
        int left = index;
        for (int i = 0; i < tags.len(obj); i++) {
          if (!QUERY_TAG.equals(tags.name(obj, i)) && left-- == 0) {
            return i;
          }
        }
        throw new IndexOutOfBoundsException("no tag " + index);
      }
    };
  }

  /** Hands every call to {@code tracer}, its tags {@link #withoutQuery without the query}. */
  private static final class Tracer<I, O> implements VertxTracer<I, O> {
    private final VertxTracer<I, O> tracer;
    private final CredentialScanner credentials;

    Tracer(VertxTracer<I, O> tracer, CredentialScanner credentials) {
      this.tracer = tracer;
      this.credentials = credentials;
    }

    @Override
    public <R> I receiveRequest(Context context, SpanKind kind, TracingPolicy policy, R request, String operation,
        Iterable<Map.Entry<String, String>> headers, TagExtractor<R> tags) {
      return tracer.receiveRequest(context, kind, policy, request, LoggableRequest.method(operation, credentials, null), headers,
          withoutQuery(tags, credentials));
    }

    @Override
    public <R> void sendResponse(Context context, R response, I payload, Throwable failure, TagExtractor<R> tags) {
      tracer.sendResponse(context, response, payload, failure, withoutQuery(tags, credentials));
    }

    @Override
    public <R> O sendRequest(Context context, SpanKind kind, TracingPolicy policy, R request, String operation,
        BiConsumer<String, String> headers, TagExtractor<R> tags) {
      return tracer.sendRequest(context, kind, policy, request, LoggableRequest.method(operation, credentials, null), headers,
          withoutQuery(tags, credentials));
    }

    @Override
    public <R> void receiveResponse(Context context, R response, O payload, Throwable failure, TagExtractor<R> tags) {
      tracer.receiveResponse(context, response, payload, failure, withoutQuery(tags, credentials));
    }

    @Override
    public void close() {
      tracer.close();
    }
  }
}
