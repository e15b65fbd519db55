package dev.idemgate.idempotency;

import dev.idemgate.storage.RedisClients;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.internal.ContextInternal;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisConnection;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import io.vertx.redis.client.ResponseType;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * Lets a request wait for its in-flight twin ({@code Prefer: wait=N}) without polling: every
 * completion is published on a Redis channel per key, and waiters on any instance subscribe to it.
 * One subscriber connection per verticle, opened on first use; channels are subscribed while
 * someone waits on them. Used only on its verticle's event loop.
 *
 * <p>A subscriber connection waits quietly on purpose, so nothing closes it for being idle. One that
 * hangs without closing (a hung Redis, a host gone without a reset) shows when a SUBSCRIBE goes
 * unconfirmed: the connection is then left (a subscribed connection is really closed, not pooled
 * again). A wait's own SUBSCRIBE has {@code timeoutMs}, and is then tried once on a new connection.
 * So that a hang is noticed without a new wait, the notifier subscribes again, every
 * {@link #KEEP_ALIVE_MS} while someone waits, to a channel of its own that nobody publishes on, and
 * leaves the connection when that goes unconfirmed for {@code keepAliveDeadlineMs}: as long as the
 * other Redis clients wait before they close a connection nothing is read from, so that a Redis
 * that only stalls (a fork, a slow script) keeps its subscribers and the completions they carry,
 * unless a new wait's SUBSCRIBE, with its shorter deadline, falls in the stall.
 *
 * <p>The keep-alive is a SUBSCRIBE and not a PING on purpose: its confirmation comes back the way
 * pub/sub messages and confirmations come, as a message to the connection's handler, so it cannot
 * be confused with them, where a PING's reply under RESP2 can take the place of a message that
 * arrives while it is in flight. There is none in Redis Cluster: there the client sends each
 * SUBSCRIBE to one master at random (a channel has no slot; the cluster carries every PUBLISH to
 * every node), so a keep-alive would test a random master, and leaving the connection over one hung
 * master would drop the subscriptions held on the others, with no new connection until the cluster
 * fails that master over (the client connects only when every master answers).
 *
 * <p>A connection lost while someone waits is replaced at once (at most once a second). Every new
 * connection subscribes again to the channels still waited on, so waits subscribed on a connection
 * that was left or lost go on; a completion published in between is missed, and such a wait ends at
 * its own timer, then looks at the record again, as when Redis is down.
 */
public final class CompletionNotifier {
  /** The least time between two subscriber connections opened to replace lost ones. */
  static final long RECONNECT_MS = 1_000;
  /** How often the subscriber connection is asked to confirm its keep-alive SUBSCRIBE while someone waits. */
  static final long KEEP_ALIVE_MS = 1_000;

  /** The notifier's own channel, for its keep-alive: nobody publishes on it. */
  private final String keepAliveChannel = "idemgate:notifier-alive:" + UUID.randomUUID();

  private final Vertx vertx;
  private final ContextInternal context;
  private final Redis redis;
  private final long timeoutMs;
  private final long keepAliveDeadlineMs;
  private final Map<String, List<Promise<Void>>> waiters = new HashMap<>();
  /**
   * The SUBSCRIBE of each channel waited on, which every wait on it is ready with: a wait that took
   * a channel already waited on as subscribed before Redis confirmed it looked at the record again
   * too early, and a completion published between that look and the confirmation never reached it
   * (it ended at its own timer, up to 10 s later). Emptied when the subscriber connection is lost or
   * left: a confirmation came on that connection, and a wait registered before its replacement
   * subscribed again was taken as subscribed while nothing was, with the same miss.
   */
  private final Map<String, Future<Void>> subscriptions = new HashMap<>();
  /** SUBSCRIBEs sent and not yet confirmed, by channel. */
  private final Map<String, Pending> confirmations = new HashMap<>();
  private Future<RedisConnection> subscriber;
  private long lastConnectAt;
  private long retryTimer = -1;
  private boolean closed;

  /**
   * @param context the owning verticle's context: every callback runs on its event loop
   * @param timeoutMs how long a connection and a wait's SUBSCRIBE may take
   * @param keepAliveDeadlineMs how long a keep-alive SUBSCRIBE may go unconfirmed before the
   *     connection is left; 0 for no keep-alive (Redis Cluster)
   */
  public CompletionNotifier(Vertx vertx, Context context, Redis redis, long timeoutMs, long keepAliveDeadlineMs) {
    this.vertx = vertx;
    this.context = (ContextInternal) context;
    this.redis = redis;
    this.timeoutMs = timeoutMs;
    this.keepAliveDeadlineMs = keepAliveDeadlineMs;
  }

  static String channel(String merchantId, IdempotencyKey key) {
    return "idemgate:done:{" + merchantId + ":" + key.value() + "}";
  }

  /** A registered wait: {@link #ready()} once subscribed, {@link #done()} on completion or when the wait runs out. */
  public final class Wait {
    private final String channel;
    private final Promise<Void> done = Promise.promise();
    private final Future<Void> ready;
    private final long timer;

    private Wait(String channel, long waitMs) {
      this.channel = channel;
      waiters.computeIfAbsent(channel, c -> new ArrayList<>()).add(done);
      this.timer = vertx.setTimer(waitMs, id -> done.tryComplete());
      // A channel already waited on is subscribed once Redis confirms it, and not before; one whose
      // SUBSCRIBE failed (Redis not reached, each try left its connection) is tried again.
      Future<Void> subscribed = subscriptions.get(channel);
      if (subscribed == null || subscribed.failed()) {
        subscribed = subscribe(channel, timeoutMs).recover(unanswered -> subscribe(channel, timeoutMs));
        subscriptions.put(channel, subscribed);
      }
      this.ready = subscribed;
    }

    /**
     * Subscribed: Redis confirmed the channel's SUBSCRIBE, this wait's or an earlier one's; fails
     * when Redis cannot be reached (then only the timer ends the wait).
     */
    public Future<Void> ready() {
      return ready;
    }

    public Future<Void> done() {
      return done.future();
    }

    /** Ends the wait and unsubscribes when nobody else waits on the channel. */
    public void cancel() {
      vertx.cancelTimer(timer);
      done.tryComplete();
      List<Promise<Void>> list = waiters.get(channel);
      if (list != null && list.remove(done) && list.isEmpty()) {
        waiters.remove(channel);
        subscriptions.remove(channel);
        if (subscriber != null && subscriber.succeeded()) {
          subscriber.result().send(Request.cmd(Command.UNSUBSCRIBE).arg(channel));
        }
      }
    }
  }

  public Wait register(String merchantId, IdempotencyKey key, long waitMs) {
    return new Wait(channel(merchantId, key), waitMs);
  }

  /** The PUBLISH a completion sends; batched by {@link RedisGate} with the record's SET. */
  static Request publish(String merchantId, IdempotencyKey key) {
    return Request.cmd(Command.PUBLISH).arg(channel(merchantId, key)).arg("done");
  }

  /**
   * SUBSCRIBE on the current connection, done when Redis confirms it (the client completes the send
   * itself as soon as the command is written); when unconfirmed within {@code deadlineMs}, that
   * connection is left.
   */
  private Future<Void> subscribe(String channel, long deadlineMs) {
    Future<RedisConnection> connection = connection();
    // One promise per channel and connection, shared by SUBSCRIBEs of it sent before the first
    // confirmation (a wait cancelled and registered again): a second one must not orphan the first,
    // whose deadline would then leave a healthy connection. It is the owning context's promise: its
    // timeout fires on the verticle's loop (a bare Promise.promise() would run it, and the retry
    // after it, on Netty's global executor thread).
    Pending pending = confirmations.get(channel);
    if (pending == null || pending.connection() != connection) {
      pending = new Pending(connection, context.promise());
      confirmations.put(channel, pending);
    }
    Pending sent = pending;
    connection.compose(c -> c.send(Request.cmd(Command.SUBSCRIBE).arg(channel))).onFailure(sent.confirmed()::tryFail);
    sent.confirmed().future().onSuccess(confirmed -> confirmations.remove(channel, sent));
    return sent.confirmed().future().timeout(deadlineMs, TimeUnit.MILLISECONDS)
        .onFailure(unconfirmed -> leave(connection));
  }

  /** A SUBSCRIBE sent and not yet confirmed: the connection it went on, and what its confirmation completes. */
  private record Pending(Future<RedisConnection> connection, Promise<Void> confirmed) {}

  /** The SUBSCRIBEs still unconfirmed on a connection that is left or lost fail now, and are forgotten. */
  private void dropPending(Future<RedisConnection> gone) {
    List<Pending> dropped = new ArrayList<>();
    confirmations.values().removeIf(pending -> pending.connection() == gone && dropped.add(pending));
    dropped.forEach(pending -> pending.confirmed().tryFail("the subscriber connection was left"));
  }

  private Future<RedisConnection> connection() {
    if (closed) {
      return Future.failedFuture("the completion notifier is closed");
    }
    if (subscriber == null || subscriber.failed()) {
      lastConnectAt = System.nanoTime();
      Future<RedisConnection> opening = RedisClients.connect(redis, timeoutMs);
      subscriber = opening;
      opening.onFailure(failure -> replaceLater());
      opening.onSuccess(c -> {
        c.handler(message -> onMessage(opening, message));
        c.exceptionHandler(e -> forget(opening));
        c.endHandler(v -> forget(opening));
        waiters.keySet().forEach(channel -> c.send(Request.cmd(Command.SUBSCRIBE).arg(channel)));
        if (keepAliveDeadlineMs > 0) {
          keepAlive(opening);
        }
      });
    }
    return subscriber;
  }

  /**
   * While {@code current} is the subscriber connection: every {@link #KEEP_ALIVE_MS} someone waits,
   * a SUBSCRIBE to the keep-alive channel, unless the last is still unconfirmed. One unconfirmed for
   * {@code keepAliveDeadlineMs} leaves the connection (in {@link #subscribe}), and a new one is
   * opened, which subscribes again to the channels waited on.
   */
  private void keepAlive(Future<RedisConnection> current) {
    context.setPeriodic(KEEP_ALIVE_MS, timer -> { // on the owning loop, whichever thread connected
      if (closed || subscriber != current) {
        vertx.cancelTimer(timer);
      } else if (!waiters.isEmpty() && !confirmations.containsKey(keepAliveChannel)) {
        // An unconfirmed keep-alive stays in confirmations until it is confirmed or its connection left.
        subscribe(keepAliveChannel, keepAliveDeadlineMs).onFailure(unconfirmed -> replaceLater());
      }
    });
  }

  /** Drops a connection that is gone (closing it, in case only its handler failed), and replaces it. */
  private void forget(Future<RedisConnection> gone) {
    if (subscriber == gone) {
      subscriber = null;
      subscriptions.clear();
      gone.onSuccess(RedisConnection::close);
      dropPending(gone);
      replaceLater();
    }
  }

  /**
   * While someone waits, a new connection, which subscribes again to every channel waited on: at
   * once, unless the last one was opened less than {@link #RECONNECT_MS} ago (a Redis that is down,
   * or drops subscribers as they come), then when that much time has passed.
   */
  private void replaceLater() {
    if (closed || waiters.isEmpty() || retryTimer >= 0) {
      return;
    }
    long sinceLastMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - lastConnectAt);
    if (sinceLastMs >= RECONNECT_MS) {
      connection();
      return;
    }
    retryTimer = vertx.setTimer(RECONNECT_MS - sinceLastMs, id -> {
      retryTimer = -1;
      if (subscriber == null || subscriber.failed()) {
        replaceLater();
      }
    });
  }

  private void leave(Future<RedisConnection> suspect) {
    if (subscriber == suspect) {
      subscriber = null;
      subscriptions.clear();
    }
    suspect.onSuccess(RedisConnection::close);
    dropPending(suspect);
  }

  /** A message or confirmation read from {@code source}. */
  private void onMessage(Future<RedisConnection> source, Response message) {
    // A pub/sub message is ["message", channel, payload], a confirmation ["subscribe", channel, count].
    if (message.type() != ResponseType.PUSH && message.type() != ResponseType.MULTI || message.size() < 3) {
      return;
    }
    String kind = message.get(0).toString();
    String channel = message.get(1).toString();
    if (kind.equals("message")) {
      List<Promise<Void>> list = waiters.get(channel);
      if (list != null) {
        list.forEach(Promise::tryComplete);
      }
    } else if (kind.equals("subscribe")) {
      Pending pending = confirmations.get(channel);
      if (pending != null && pending.connection() == source) { // never a late one from a connection left
        pending.confirmed().tryComplete();
      }
    }
  }

  /** Closes the connection, or the one being opened when it arrives; nothing is opened after this. */
  public Future<Void> close() {
    closed = true;
    if (retryTimer >= 0) {
      vertx.cancelTimer(retryTimer);
    }
    Future<RedisConnection> open = subscriber;
    subscriber = null;
    return open == null ? Future.succeededFuture() : open.compose(RedisConnection::close).otherwiseEmpty();
  }
}
