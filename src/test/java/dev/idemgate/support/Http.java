package dev.idemgate.support;

import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.HttpRequest;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * A blocking HTTP client for tests, on its own Vert.x instance: each call waits on the test
 * thread (never an event loop) for at most 30 s.
 */
public final class Http implements AutoCloseable {
  private final Vertx vertx = Vertx.vertx();
  private final WebClient client = WebClient.create(vertx, new WebClientOptions().setKeepAlive(true),
      new PoolOptions().setHttp1MaxSize(256));

  /** A response as the client saw it. */
  public record Reply(int status, MultiMap headers, String body) {
    public JsonObject json() {
      return new JsonObject(body);
    }

    public String header(String name) {
      return headers.get(name);
    }
  }

  public static String newKey() {
    return "test-" + UUID.randomUUID();
  }

  public static JsonObject payment(long amount, String source) {
    return new JsonObject().put("amount", amount).put("currency", "EUR").put("source", source)
        .put("merchant_reference", "order-" + UUID.randomUUID());
  }

  /** POST /pay as a merchant with a key and a JSON body. */
  public Reply pay(int port, String apiKey, String idempotencyKey, JsonObject body) {
    return await(payAsync(port, apiKey, idempotencyKey, body.encode(), Map.of()));
  }

  public Future<Reply> payAsync(int port, String apiKey, String idempotencyKey, String body, Map<String, String> headers) {
    return payAsync(port, apiKey, idempotencyKey, body, MultiMap.caseInsensitiveMultiMap().addAll(headers));
  }

  /** POST /pay with headers of which a name may come more than once: each of its values goes as a line of its own. */
  public Future<Reply> payAsync(int port, String apiKey, String idempotencyKey, String body, MultiMap headers) {
    HttpRequest<Buffer> request = client.post(port, "127.0.0.1", "/pay").timeout(30_000)
        .putHeader("Authorization", "Bearer " + apiKey)
        .putHeader("Content-Type", "application/json");
    if (idempotencyKey != null) {
      request.putHeader("Idempotency-Key", idempotencyKey);
    }
    request.headers().addAll(headers);
    return request.sendBuffer(Buffer.buffer(body)).map(r -> new Reply(r.statusCode(), r.headers(), r.bodyAsString()));
  }

  /** Any request, with headers; {@code body} may be null. */
  public Reply send(HttpMethod method, int port, String path, Map<String, String> headers, Buffer body) {
    HttpRequest<Buffer> request = client.request(method, port, "127.0.0.1", path).timeout(30_000);
    headers.forEach(request::putHeader);
    Future<io.vertx.ext.web.client.HttpResponse<Buffer>> sent = body == null ? request.send() : request.sendBuffer(body);
    return await(sent.map(r -> new Reply(r.statusCode(), r.headers(), r.bodyAsString())));
  }

  public Reply get(int port, String path, String bearer) {
    return await(getAsync(port, path, bearer));
  }

  public Future<Reply> getAsync(int port, String path, String bearer) {
    HttpRequest<Buffer> request = client.request(HttpMethod.GET, port, "127.0.0.1", path).timeout(30_000);
    if (bearer != null) {
      request.putHeader("Authorization", "Bearer " + bearer);
    }
    return request.send().map(r -> new Reply(r.statusCode(), r.headers(), r.bodyAsString()));
  }

  public static <T> T await(Future<T> future) {
    try {
      return future.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError("request did not complete: " + e, e);
    }
  }

  public Vertx vertx() {
    return vertx;
  }

  @Override
  public void close() {
    client.close();
    await(vertx.close());
  }
}
