package dev.idemgate.idempotency;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.PromiseInternal;
import java.util.function.Supplier;

/**
 * One {@link IdempotencyStore} for every API verticle of the process, so that the claims and
 * completions of all event loops join the same groups. PostgreSQL's cost per payment is mostly
 * its cost per statement (bind, execute, commit, wake-up), so a statement that carries twice the
 * payments halves most of it: with one store per verticle a statement carried about 5 payments at
 * 32 connections; shared, about 8 (docs/performance-history.md has the runs).
 *
 * <p>The store is made by the first verticle that joins, on that verticle's event loop and with
 * its pool. That loop and pool must outlive every request of every verticle, so
 * {@link #leave(Context)} completes only when the last member has left: each verticle leaves in its
 * stop(), after its own server has drained, and closes its pool only when the leave completes.
 */
public final class SharedIdempotencyStore {
  private final Promise<Void> allLeft = Promise.promise();
  private IdempotencyStore store;
  private int members;
  private boolean closed;

  /** The shared store; the first member's {@code factory} makes it, later ones are not called. */
  public synchronized IdempotencyStore join(Supplier<IdempotencyStore> factory) {
    if (closed) {
      throw new IllegalStateException("every member has left: the shared store is closed");
    }
    if (store == null) {
      store = factory.get();
    }
    members++;
    return store;
  }

  /**
   * One member is done with the store. The future completes once every member is, on the
   * leaver's own context (the last one to leave completes it from its loop).
   */
  public Future<Void> leave(Context leaver) {
    PromiseInternal<Void> left = ((ContextInternal) leaver).promise();
    boolean last;
    synchronized (this) {
      last = members > 0 && --members == 0;
      closed |= last;
    }
    // Completed outside the lock: its callbacks close pools and clients, and another loop may be
    // waiting for the lock meanwhile.
    if (last) {
      allLeft.tryComplete();
    }
    allLeft.future().onComplete(left);
    return left.future();
  }

  synchronized int members() {
    return members;
  }
}
