package dev.idemgate.storage;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.internal.ContextInternal;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisConnection;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import java.util.ArrayList;
import java.util.List;

/**
 * One Redis connection owned by one verticle, with every command pipelined on it: no pool to
 * borrow from, no wait queue to overflow under load, one TCP stream per event loop. A broken
 * connection is dropped and the next command opens a new one, so the gate comes back by itself
 * after a Redis restart. Commands are queued and sent on the owning verticle's event loop; a
 * caller on another thread (a test) is handed over to it first.
 *
 * <p>Commands sent during one event-loop turn go out together at the end of the turn, in one
 * write: one system call for all the gate checks and completions of the requests that turn
 * handled, instead of one each (a third of the gateway's system-call time under load). A lone
 * command goes out alone, as soon as the turn ends.
 *
 * <p>Hazard: Redis answers a group as a whole, so an error reply to one command (a wrong type in
 * our key space, which the gateway never writes) fails every command of its group, and, as for a
 * lone command, drops the connection. Every caller treats a Redis failure as "ask PostgreSQL", so
 * this costs speed, never correctness.
 *
 * <p>Every answer is a future of the owning context. Hazard: a future made by a bare
 * {@code Promise.promise()} has no context, and Vert.x 5 runs {@code timeout(...)} of such a future
 * on Netty's single global executor thread: two cross-thread hand-offs per command when all goes
 * well, and when the timeout fires, the caller's whole continuation ran on that foreign thread.
 */
public final class PipelinedRedis {
  private final Redis client;
  private final ContextInternal context;
  private Future<RedisConnection> connection;
  private List<Request> queued = new ArrayList<>();
  private List<Promise<Response>> answers = new ArrayList<>();

  /** @param context the owning verticle's context, whose event loop sends every command */
  public PipelinedRedis(Redis client, Context context) {
    this.client = client;
    this.context = (ContextInternal) context;
  }

  public Future<Response> send(Request request) {
    Promise<Response> answer = context.promise();
    if (!context.isRunningOnContext()) {
      context.runOnContext(v -> send(request).onComplete(answer));
      return answer.future();
    }
    if (queued.isEmpty()) {
      context.runOnContext(v -> flush());
    }
    queued.add(request);
    answers.add(answer);
    return answer.future();
  }

  /** The commands in order, in the same write; fails if any of them fails. */
  public Future<List<Response>> batch(List<Request> requests) {
    List<Future<Response>> each = new ArrayList<>(requests.size());
    requests.forEach(r -> each.add(send(r)));
    // Future.all has no context either: hand its result to a promise of ours (see the class comment).
    Promise<List<Response>> answers = context.promise();
    Future.all(each).map(all -> {
      List<Response> responses = new ArrayList<>(each.size());
      each.forEach(f -> responses.add(f.result()));
      return responses;
    }).onComplete(answers);
    return answers.future();
  }

  private void flush() {
    List<Request> requests = queued;
    List<Promise<Response>> promises = answers;
    queued = new ArrayList<>();
    answers = new ArrayList<>();
    if (requests.size() == 1) {
      connection().compose(c -> c.send(requests.get(0))).onFailure(this::dropOnFailure).onComplete(promises.get(0));
      return;
    }
    connection().compose(c -> c.batch(requests)).onFailure(this::dropOnFailure).onComplete(done -> {
      for (int i = 0; i < promises.size(); i++) {
        if (done.succeeded()) {
          promises.get(i).complete(done.result().get(i));
        } else {
          promises.get(i).fail(done.cause());
        }
      }
    });
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
