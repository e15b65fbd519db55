package dev.idemgate.storage;

import io.vertx.core.Future;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisConnection;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import java.util.List;

/**
 * One Redis connection owned by one verticle, with every command pipelined on it: no pool to
 * borrow from, no wait queue to overflow under load, one TCP stream per event loop. A broken
 * connection is dropped and the next command opens a new one, so the gate comes back by itself
 * after a Redis restart. Used only on its verticle's event loop.
 */
public final class PipelinedRedis {
  private final Redis client;
  private Future<RedisConnection> connection;

  public PipelinedRedis(Redis client) {
    this.client = client;
  }

  public Future<Response> send(Request request) {
    return connection().compose(c -> c.send(request)).onFailure(this::dropOnFailure);
  }

  public Future<List<Response>> batch(List<Request> requests) {
    return connection().compose(c -> c.batch(requests)).onFailure(this::dropOnFailure);
  }

  private Future<RedisConnection> connection() {
    if (connection == null || connection.failed()) {
      Future<RedisConnection> opening = client.connect();
      connection = opening;
      opening.onSuccess(c -> {
        c.exceptionHandler(e -> drop(opening));
        c.endHandler(v -> drop(opening));
      });
    }
    return connection;
  }

  private void dropOnFailure(Throwable failure) {
    // A timeout or protocol error may leave replies out of step with requests: start afresh.
    Future<RedisConnection> current = connection;
    if (current != null && current.succeeded()) {
      current.result().close();
    }
    connection = null;
  }

  private void drop(Future<RedisConnection> which) {
    if (connection == which) {
      connection = null;
    }
  }

  public Future<Void> close() {
    Future<RedisConnection> current = connection;
    connection = null;
    return current != null && current.succeeded() ? current.result().close() : Future.succeededFuture();
  }
}
