package dev.idemgate.storage;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.internal.ContextInternal;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisConnection;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * One Redis connection owned by one verticle, with every command pipelined on it: no pool to
 * borrow from, no wait queue to overflow under load, one TCP stream per event loop. A connection
 * Redis closed or reset is dropped and the next command opens a new one, so the gate comes back by
 * itself after a Redis restart. Commands are queued and sent on the owning verticle's event loop; a
 * caller on another thread (a test) is handed over to it first.
 *
 * <p>Hazard: the connection is leased from the client's pool, and "dropping" it after a failure
 * gives it back ({@code close()} of a pooled connection recycles it, it does not close it). A
 * connection that stops answering without being closed (a hung Redis, a host gone without a reset)
 * is left only because the client closes it once nothing has been read from it for a while: make
 * the client with {@link RedisClients#pipelineOptions}.
 *
 * <p>That close does not wait for a command being written, so a connection quiet for the client's
 * {@link RedisClients#reuseLimit} (nothing heard from it since it opened or last answered) is not
 * written on again: it is left, unclosed, to the read-idle close due soon after, and the command goes
 * on a new connection. Hazard: left unclosed because closing it would only give it back to the pool,
 * which would lend it straight back; so a limit is only for a client that does close idle connections.
 * Not in Redis Cluster, whose connection spans nodes (see the constructor): there a command sent to a
 * node quiet for the whole read-idle time can still meet its close, and falls back to PostgreSQL.
 *
 * <p>Commands sent during one event-loop turn go out together at the end of the turn, in one
 * write: one system call for all the gate checks and completions of the requests that turn
 * handled, instead of one each (a third of the gateway's system-call time under load). A lone
 * command goes out alone, as soon as the turn ends.
 *
 * <p>Redis Cluster takes a batch only when all its keys are in one hash slot, and the commands of
 * different requests are for different records, in different slots. So against a cluster each
 * {@link #send} and each {@link #batch} goes out on its own (the commands of one batch are for one
 * record, whose keys share a hash tag, and stay in order); only a single server or Sentinel's
 * master gets the turn's commands in one write.
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
  /** One caller's commands: a {@link #send} (one command) or a {@link #batch}, answered together. */
  private record Unit(List<Request> requests, Promise<List<Response>> answer) {}

  private final Redis client;
  private final ContextInternal context;
  private final boolean cluster;
  private final QuietLimit quiet;
  private Future<RedisConnection> connection;
  private List<Unit> queued = new ArrayList<>();

  /**
   * A pipeline that keeps its connection however long it is quiet, for a client that does not close
   * idle connections.
   *
   * @param context the owning verticle's context, whose event loop sends every command
   */
  public PipelinedRedis(Redis client, Context context) {
    this(client, context, false, Duration.ZERO);
  }

  /**
   * @param cluster the client is a Redis Cluster client: no write mixes the commands of two callers,
   *     and no connection is left for being quiet (below)
   * @param reuseLimit {@link RedisClients#reuseLimit} of the client's options
   */
  public PipelinedRedis(Redis client, Context context, boolean cluster, Duration reuseLimit) {
    this.client = client;
    this.context = (ContextInternal) context;
    this.cluster = cluster;
    // A cluster connection is one connection per node, and an answer from one node says nothing of
    // the others' quiet; leaving them all at once would not keep a command off the quiet one either.
    this.quiet = new QuietLimit(cluster ? Duration.ZERO : reuseLimit);
  }

  /** The quiet time after which a connection of this pipeline's client is left (zero: never). */
  public Duration reuseLimit() {
    return quiet.limit();
  }

  public Future<Response> send(Request request) {
    return enqueue(List.of(request)).map(responses -> responses.get(0));
  }

  /** The commands in order, in the same write; fails if any of them fails. */
  public Future<List<Response>> batch(List<Request> requests) {
    return enqueue(List.copyOf(requests));
  }

  private Future<List<Response>> enqueue(List<Request> requests) {
    Promise<List<Response>> answer = context.promise();
    if (!context.isRunningOnContext()) {
      context.runOnContext(v -> enqueue(requests).onComplete(answer));
      return answer.future();
    }
    if (queued.isEmpty()) {
      context.runOnContext(v -> flush());
    }
    queued.add(new Unit(requests, answer));
    return answer.future();
  }

  private void flush() {
    List<Unit> units = queued;
    queued = new ArrayList<>();
    if (cluster || units.size() == 1) {
      units.forEach(unit -> write(unit.requests()).onComplete(unit.answer()));
      return;
    }
    List<Request> all = new ArrayList<>();
    units.forEach(unit -> all.addAll(unit.requests()));
    write(all).onComplete(done -> {
      int next = 0;
      for (Unit unit : units) {
        int size = unit.requests().size();
        if (done.succeeded()) {
          unit.answer().complete(done.result().subList(next, next + size));
        } else {
          unit.answer().fail(done.cause());
        }
        next += size;
      }
    });
  }

  private Future<List<Response>> write(List<Request> requests) {
    Future<RedisConnection> on = connection();
    Future<List<Response>> answered = requests.size() == 1
        ? on.compose(c -> c.send(requests.get(0))).map(response -> Collections.singletonList(response))
        : on.compose(c -> c.batch(requests));
    return answered.onSuccess(responses -> heardFrom(on)).onFailure(this::dropOnFailure);
  }

  private Future<RedisConnection> connection() {
    if (connection != null && connection.succeeded() && quiet.passed()) {
      connection = null; // left to the client's read-idle close (class comment)
    }
    if (connection == null || connection.failed()) {
      Future<RedisConnection> opening = client.connect();
      connection = opening;
      opening.onSuccess(c -> {
        heardFrom(opening);
        c.exceptionHandler(e -> dropEnded(opening, c));
        c.endHandler(v -> dropEnded(opening, c));
      });
    }
    return connection;
  }

  private void dropEnded(Future<RedisConnection> which, RedisConnection ended) {
    if (connection == which) {
      connection = null;
    }
    if (!cluster) {
      // Closing a connection that has ended only ends its lease: the pool's meters count it no more.
      // Not a cluster connection: it ends node by node, and closing it would give the live nodes'
      // connections back to their pools, once per node that ends.
      ended.close();
    }
  }

  private void heardFrom(Future<RedisConnection> which) {
    if (connection == which) {
      quiet.heard();
    }
  }

  private void dropOnFailure(Throwable failure) {
    // A timeout or protocol error may leave replies out of step with requests: start afresh.
    Future<RedisConnection> current = connection;
    if (current != null && current.succeeded()) {
      current.result().close();
    }
    connection = null;
  }

  public Future<Void> close() {
    Future<RedisConnection> current = connection;
    connection = null;
    return current != null && current.succeeded() ? current.result().close() : Future.succeededFuture();
  }
}
