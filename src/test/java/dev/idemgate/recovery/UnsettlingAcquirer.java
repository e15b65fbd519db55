package dev.idemgate.recovery;

import dev.idemgate.support.Http;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An acquirer that settles nothing: it loses every charge's answer (500: the payment is pending,
 * 202) and answers every inquiry with one status, noting when each provider key was asked.
 */
final class UnsettlingAcquirer implements AutoCloseable {
  final Vertx vertx = Vertx.vertx();
  final AtomicInteger inquiries = new AtomicInteger();
  /** Provider key → {@link System#nanoTime()} of each inquiry about it. */
  final Map<String, List<Long>> askedAt = new ConcurrentHashMap<>();
  final HttpServer server;

  /** Refuses every inquiry with 429 and {@code Retry-After: retryAfterSeconds}. */
  static UnsettlingAcquirer rateLimiting(int retryAfterSeconds) {
    return new UnsettlingAcquirer(429, Integer.toString(retryAfterSeconds));
  }

  /** Answers every inquiry 500: the outcome stays unknown. */
  static UnsettlingAcquirer failing() {
    return new UnsettlingAcquirer(500, null);
  }

  private UnsettlingAcquirer(int inquiryStatus, String retryAfter) {
    server = Http.await(vertx.createHttpServer().requestHandler(request -> request.body().onSuccess(b -> {
      if (request.method() == HttpMethod.GET) {
        inquiries.incrementAndGet();
        askedAt.computeIfAbsent(request.getParam("idempotency_key"), k -> new CopyOnWriteArrayList<>()).add(System.nanoTime());
        if (retryAfter != null) {
          request.response().putHeader("Retry-After", retryAfter);
        }
        request.response().setStatusCode(inquiryStatus).end("{}");
      } else {
        request.response().setStatusCode(500).end("{}");
      }
    })).listen(0, "127.0.0.1"));
  }

  List<Long> asked(String providerKey) {
    return askedAt.getOrDefault(providerKey, List.of());
  }

  @Override
  public void close() {
    Http.await(vertx.close());
  }
}
