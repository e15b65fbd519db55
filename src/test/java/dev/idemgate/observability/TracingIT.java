package dev.idemgate.observability;

import static dev.idemgate.support.TestGateway.KEY_A;
import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.spi.ILoggingEvent;
import dev.idemgate.support.CapturedLogs;
import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class TracingIT {
  private static final InMemorySpanExporter spans = InMemorySpanExporter.create();
  private static TestGateway gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    OpenTelemetrySdk sdk = OpenTelemetrySdk.builder()
        .setTracerProvider(SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(spans)).build())
        .build();
    gateway = TestGateway.start(Map.of(), sdk);
    http = new Http();
  }

  @BeforeEach
  void forgetEarlierSpans() {
    spans.reset(); // each test reads the server spans of its own requests
  }

  @AfterAll
  static void stop() {
    http.close();
    gateway.close();
  }

  @Test
  @DisplayName("a payment is one trace: the server span, with the gate, store and provider as its children, and the trace id in the access log")
  void spanPerRequestWithChildren() throws Exception {
    try (CapturedLogs access = CapturedLogs.of("idemgate.access")) {
      Http.Reply reply = http.pay(gateway.apiPort(), KEY_A, Http.newKey(), Http.payment(321, "tok_visa"));
      assertThat(reply.status()).isEqualTo(201);
      Waits.eventually(Duration.ofSeconds(10), () -> spans.getFinishedSpanItems().stream().map(SpanData::getName).toList()
          .contains("idemgate.store.complete") && spans.getFinishedSpanItems().stream().anyMatch(s -> s.getKind() == SpanKind.SERVER),
          "the payment's server span and its last child finished");

      SpanData server = spans.getFinishedSpanItems().stream()
          .filter(s -> s.getKind() == SpanKind.SERVER).findFirst().orElseThrow(() -> new AssertionError("no server span: " + spans.getFinishedSpanItems()));
      List<SpanData> children = spans.getFinishedSpanItems().stream()
          .filter(s -> s.getTraceId().equals(server.getTraceId()) && s.getParentSpanId().equals(server.getSpanId()))
          .collect(Collectors.toList());
      assertThat(children.stream().map(SpanData::getName))
          .contains("idemgate.gate", "idemgate.store.claim", "idemgate.provider.charge", "idemgate.store.complete");

      ILoggingEvent line = access.events().stream()
          .filter(e -> e.getKeyValuePairs() != null && e.getKeyValuePairs().stream()
              .anyMatch(kv -> kv.key.equals("request_id") && reply.header("X-Request-Id").equals(kv.value)))
          .findFirst().orElseThrow();
      assertThat(line.getKeyValuePairs().stream().filter(kv -> kv.key.equals("trace_id")).map(kv -> kv.value))
          .containsExactly(server.getTraceId());
    }
  }

  @Test
  @DisplayName("server spans carry the path without the query: a key in /admin/simulator/charges?idempotency_key=, or any query a client sends, never reaches the collector")
  void serverSpansLeaveTheQueryOut() throws Exception {
    String key = "span-secret-key-" + System.nanoTime();
    String query = "note=span-secret-query-" + System.nanoTime();
    assertThat(http.get(gateway.managementPort(), "/admin/simulator/charges?idempotency_key=" + key, TestGateway.ADMIN_TOKEN)
        .status()).isEqualTo(200);
    assertThat(http.send(HttpMethod.POST, gateway.apiPort(), "/pay?" + query, Map.of("Authorization", "Bearer " + KEY_A,
        "Idempotency-Key", Http.newKey(), "Content-Type", "application/json"), Http.payment(321, "tok_visa").toBuffer())
        .status()).isEqualTo(201);

    Supplier<List<SpanData>> serversOf = () -> spans.getFinishedSpanItems().stream()
        .filter(s -> s.getKind() == SpanKind.SERVER && s.getAttributes().asMap().values().stream()
            .anyMatch(v -> String.valueOf(v).startsWith("/admin/simulator/charges") || String.valueOf(v).startsWith("/pay")))
        .collect(Collectors.toList());
    Waits.eventually(Duration.ofSeconds(10), () -> serversOf.get().size() >= 2, "the two requests' server spans");
    List<SpanData> servers = serversOf.get();
    assertThat(servers).hasSize(2);
    assertThat(servers).allSatisfy(span -> assertThat(span.getAttributes().asMap().values())
        .as(span.getAttributes().toString()).noneMatch(v -> String.valueOf(v).contains(key) || String.valueOf(v).contains(query)));
    assertThat(servers.stream().map(span -> span.getAttributes().get(AttributeKey.stringKey("url.path"))))
        .containsExactlyInAnyOrder("/admin/simulator/charges", "/pay");
  }

  @Test
  @DisplayName("a card number a client puts in the method or the path never reaches the collector: the span's name and "
      + "tags hold the method and path as the access log does, redacted:card_number")
  void serverSpansRedactCardNumbers() throws Exception {
    String method = "4242424242424242";
    String path = "/v1/payments/4111111111111111";
    for (String request : List.of(method + " /pay HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY_A + "\r\nConnection: close\r\n\r\n")) {
      try (Socket socket = new Socket("127.0.0.1", gateway.apiPort())) {
        socket.setSoTimeout(10_000);
        socket.getOutputStream().write(request.getBytes(StandardCharsets.UTF_8));
        assertThat(new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).startsWith("HTTP/1.1 4");
      }
    }
    Waits.eventually(Duration.ofSeconds(10), () -> spans.getFinishedSpanItems().stream()
        .filter(s -> s.getKind() == SpanKind.SERVER).count() >= 2, "the two requests' server spans");

    List<SpanData> servers = spans.getFinishedSpanItems().stream().filter(s -> s.getKind() == SpanKind.SERVER).toList();
    assertThat(servers).allSatisfy(span -> assertThat(span.getName() + " " + span.getAttributes())
        .doesNotContain("4242424242424242").doesNotContain("4111111111111111"));
    assertThat(servers).anySatisfy(span -> assertThat(span.getName()).contains("redacted:card_number"));
  }

  @Test
  @DisplayName("tracing: otlp starts, and a payment's spans reach an OTLP/HTTP collector at /v1/traces, the last ones on stop")
  void otlpExportOverHttp() throws Exception {
    List<String> received = new CopyOnWriteArrayList<>();
    HttpServer collector = http.vertx().createHttpServer().requestHandler(request -> request.body().onSuccess(body -> {
      received.add(request.method() + " " + request.path() + " " + request.getHeader("Content-Type") + " " + body.length());
      request.response().putHeader("Content-Type", "application/x-protobuf").end();
    }));
    int port = Http.await(collector.listen(0)).actualPort();
    try {
      TestGateway traced = TestGateway.start(Map.of("IDEMGATE_TRACING", "otlp",
          "IDEMGATE_OTLP_ENDPOINT", "http://127.0.0.1:" + port));
      try {
        assertThat(http.pay(traced.apiPort(), KEY_A, Http.newKey(), Http.payment(321, "tok_visa")).status()).isEqualTo(201);
      } finally {
        traced.close(); // the batch processor sends what it holds on shutdown
      }
      assertThat(received).isNotEmpty()
          .allSatisfy(r -> assertThat(r).startsWith("POST /v1/traces application/x-protobuf "));
      assertThat(received.stream().mapToInt(r -> Integer.parseInt(r.substring(r.lastIndexOf(' ') + 1))).sum())
          .as("protobuf bytes of spans").isGreaterThan(100);
    } finally {
      Http.await(collector.close());
    }
  }

  @Test
  @DisplayName("otlp_endpoint without a path gets /v1/traces; one with a path is kept")
  void tracesUrl() {
    assertThat(Tracing.tracesUrl("http://collector:4318")).isEqualTo("http://collector:4318/v1/traces");
    assertThat(Tracing.tracesUrl("http://collector:4318/")).isEqualTo("http://collector:4318/v1/traces");
    assertThat(Tracing.tracesUrl("https://otel.example/custom/traces")).isEqualTo("https://otel.example/custom/traces");
  }
}
