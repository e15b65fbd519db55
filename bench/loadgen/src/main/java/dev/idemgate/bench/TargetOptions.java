package dev.idemgate.bench;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import java.net.URI;
import picocli.CommandLine.Option;

/** Where the requests go and over what: shared by every command that sends payments. */
public final class TargetOptions {
  @Option(names = "--url", defaultValue = "http://127.0.0.1:8080", description = "Base URL of the gateway (or the bare endpoint). Default: ${DEFAULT-VALUE}.")
  URI url;

  @Option(names = "--path", defaultValue = "/pay", description = "Path of the payment endpoint. Default: ${DEFAULT-VALUE}.")
  String path;

  @Option(names = "--api-key", defaultValue = "sk_test_demo", description = "Merchant API key. Default: ${DEFAULT-VALUE}.")
  String apiKey;

  @Option(names = "--connections", defaultValue = "32", description = "HTTP/1.1 connections, or HTTP/2 connections for h2c. Default: ${DEFAULT-VALUE}.")
  int connections;

  @Option(names = "--protocol", defaultValue = "http1", description = "http1 or h2c (HTTP/2 over cleartext, prior knowledge). Default: ${DEFAULT-VALUE}.")
  String protocol;

  @Option(names = "--streams", defaultValue = "100", description = "h2c: concurrent streams per connection before another connection opens. Default: ${DEFAULT-VALUE}.")
  int streams;

  @Option(names = "--timeout", defaultValue = "30000", description = "Per-request idle timeout in ms. Default: ${DEFAULT-VALUE}.")
  long timeoutMs;

  @Option(names = "--key-prefix", description = "Prefix of the idempotency keys (default: a fresh one per run).")
  String keyPrefix;

  boolean h2c() {
    if (!protocol.equals("http1") && !protocol.equals("h2c")) {
      throw new IllegalArgumentException("--protocol must be http1 or h2c, got " + protocol);
    }
    return protocol.equals("h2c");
  }

  String protocolLabel() {
    return h2c() ? "h2c" : "http/1.1";
  }

  /** How h2c load was spread, as the start of a result line's note; empty for HTTP/1.1. */
  String connectionsNote() {
    return h2c() ? connections + " connections x " + streams + " streams; " : "";
  }

  String keyPrefix(String scenario) {
    return keyPrefix != null ? keyPrefix : "bench-" + scenario + "-" + Long.toString(System.currentTimeMillis(), 36);
  }

  HttpClient client(Vertx vertx) {
    HttpClientOptions options = new HttpClientOptions()
        .setDefaultHost(url.getHost()).setDefaultPort(url.getPort())
        .setKeepAlive(true).setPipelining(false);
    if (h2c()) {
      // Prior knowledge, no upgrade dance: every connection speaks HTTP/2 from its first byte. The
      // Vert.x client fills one connection up to this stream limit before it opens the next. A low
      // limit is a trap: at 4 connections x 8 streams and 1,000/s against the bare endpoint,
      // requests queued in the client pool for seconds (p50 7.9 s), while 4 x 256 gave p50 4.8 ms.
      options.setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false)
          .setHttp2MultiplexingLimit(streams);
    }
    PoolOptions pool = new PoolOptions().setHttp1MaxSize(connections).setHttp2MaxSize(connections)
        .setMaxWaitQueueSize(-1);
    return vertx.createHttpClient(options, pool);
  }

  /**
   * One POST /pay with this key and body, on the given client; the answer once its body is read. The
   * body is asked for inside the compose on send(): prime calls this from its main thread, and a
   * step chained flat after send() could be added there after the answer had ended, and a body()
   * asked for after the end never completes.
   */
  Future<HttpClientResponse> pay(HttpClient client, String key, Buffer body) {
    return client.request(pay(key))
        .compose(request -> request.send(body)
            .compose(response -> response.body().map(read -> response)));
  }

  RequestOptions pay(String key) {
    return new RequestOptions().setMethod(HttpMethod.POST).setURI(path).setIdleTimeout(timeoutMs)
        .putHeader("Authorization", "Bearer " + apiKey)
        .putHeader("Idempotency-Key", key)
        .putHeader("Content-Type", "application/json");
  }
}
