package dev.idemgate.storage;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * Groups the writes of concurrent requests into one statement, one round trip and one commit.
 * Writes submitted during one event-loop turn go out together at the end of the turn; while
 * {@code maxInFlight} groups are already at the database, new writes wait and join the next
 * group. So under light traffic a write goes out at once, alone, with no added latency, and under
 * heavy traffic groups grow by themselves instead of queueing one commit per request.
 *
 * <p>A group's statement fails for all its writes. When the failure is one the database gives for
 * the statement itself (a bad value, a deadlock) rather than for a lost connection
 * ({@code triedAlone}), each write of the group is then tried alone, so that one request's bad
 * value fails that request only, never the payments of other clients beside it in the group, and
 * the writes of a deadlock's victim land after all. The executor must leave nothing behind when it
 * fails (one autocommit statement does), so that trying again is safe.
 *
 * <p>The queue belongs to one event loop (the context given); a submit from any other thread hops
 * onto it. Each result is delivered back on the submitter's own context, so what runs after the
 * write still sees that request's context-local state (its trace span above all).
 *
 * @param <I> one request's write
 * @param <O> its result; the executor returns one per input, in order
 */
public final class GroupCommit<I, O> {
  private final Context context;
  private final Function<List<I>, Future<List<O>>> executor;
  private final int maxGroup;
  private final int maxInFlight;
  private final Predicate<Throwable> triedAlone;
  private final int maxQueued;
  private final long maxWaitNanos;
  private volatile Thread loopThread;
  /** The writes waiting for a group, oldest first. */
  private final ArrayDeque<Queued<I, O>> queue = new ArrayDeque<>();
  private boolean flushScheduled;
  private int inFlight;

  /** One waiting write: what to write, who waits for it, and since when ({@link System#nanoTime()}). */
  private record Queued<I, O>(I input, Promise<O> promise, long since) {}

  /**
   * A write that never reached the database: the queue was full, or it waited past its deadline
   * while the groups before it were at a database that did not answer. Nothing of it was written.
   */
  public static final class NotSent extends RuntimeException {
    NotSent(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * @param triedAlone which failures of a group of several writes send each of them again alone
   * @param maxQueued writes waiting for a group at most; past it a write fails at once ({@link NotSent})
   * @param maxWait how long a write may wait for its group; past it, it fails ({@link NotSent}). Without
   *     these a database that stalls grew the queue by every request that came (one group of 256 per
   *     statement timeout went out), each holding its request, and served the backlog of clients long
   *     gone before anyone new once it came back.
   */
  public GroupCommit(Context context, int maxGroup, int maxInFlight, Function<List<I>, Future<List<O>>> executor,
      Predicate<Throwable> triedAlone, int maxQueued, Duration maxWait) {
    this.context = context;
    this.triedAlone = triedAlone;
    this.executor = executor;
    this.maxGroup = maxGroup;
    this.maxInFlight = maxInFlight;
    this.maxQueued = maxQueued;
    this.maxWaitNanos = maxWait.toNanos();
    context.runOnContext(v -> loopThread = Thread.currentThread());
  }

  public Future<O> submit(I input) {
    Context caller = Vertx.currentContext();
    Promise<O> promise = Promise.promise();
    if (Thread.currentThread() == loopThread) {
      enqueue(input, promise);
    } else {
      context.runOnContext(v -> enqueue(input, promise));
    }
    if (caller == null) {
      return promise.future();
    }
    Promise<O> delivered = Promise.promise();
    promise.future().onComplete(done -> {
      if (Vertx.currentContext() == caller) {
        delivered.handle(done);
      } else {
        caller.runOnContext(v -> delivered.handle(done));
      }
    });
    return delivered.future();
  }

  private void enqueue(I input, Promise<O> promise) {
    if (queue.size() >= maxQueued) {
      promise.fail(new NotSent(maxQueued + " writes already wait for the database"));
      return;
    }
    queue.add(new Queued<>(input, promise, System.nanoTime()));
    if (!flushScheduled) {
      flushScheduled = true;
      context.runOnContext(v -> {
        flushScheduled = false;
        flush();
      });
    }
  }

  private void flush() {
    failOverdue();
    while (!queue.isEmpty() && inFlight < maxInFlight) {
      int n = Math.min(queue.size(), maxGroup);
      List<I> group = new ArrayList<>(n);
      List<Promise<O>> waiting = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        Queued<I, O> next = queue.poll();
        group.add(next.input());
        waiting.add(next.promise());
      }
      inFlight++;
      execute(group).onComplete(done -> {
        if (done.succeeded()) {
          deliver(done.result(), waiting);
          landed();
        } else if (group.size() > 1 && triedAlone.test(done.cause())) {
          // Still one group in flight until every write has had its own try.
          List<Future<List<O>>> alone = new ArrayList<>(group.size());
          for (int i = 0; i < group.size(); i++) {
            Promise<O> promise = waiting.get(i);
            alone.add(execute(List.of(group.get(i))).onComplete(one -> {
              if (one.succeeded()) {
                deliver(one.result(), List.of(promise));
              } else {
                promise.fail(one.cause());
              }
            }));
          }
          Future.join(alone).onComplete(all -> landed());
        } else {
          waiting.forEach(p -> p.fail(done.cause()));
          landed();
        }
      });
    }
  }

  /** Fails the writes that waited past their deadline; they queue oldest first. */
  private void failOverdue() {
    long now = System.nanoTime();
    while (!queue.isEmpty() && now - queue.peek().since() > maxWaitNanos) {
      queue.poll().promise().fail(new NotSent("waited over " + maxWaitNanos / 1_000_000 + " ms for the database"));
    }
  }

  private Future<List<O>> execute(List<I> group) {
    try {
      return executor.apply(group);
    } catch (RuntimeException e) {
      return Future.failedFuture(e);
    }
  }

  private void deliver(List<O> outputs, List<Promise<O>> waiting) {
    for (int i = 0; i < waiting.size(); i++) {
      waiting.get(i).complete(outputs.get(i));
    }
  }

  private void landed() {
    inFlight--;
    flush();
  }
}
