package dev.idemgate.support;

import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * Bounded waiting for tests: polling for a condition, sleeping without checked exceptions, and
 * calls made after quiet spells.
 */
public final class Waits {
  /**
   * How much later than due a busy machine may deliver what is due (two loaded cores have added 0.8 s
   * to a call). A deadline is asserted exactly from below, and within this from above.
   */
  public static final long LATE_MS = 4_000;

  private Waits() {}

  /** Polls every 100 ms until {@code condition} holds; fails naming {@code what} after {@code limit}. */
  public static void eventually(Duration limit, BooleanSupplier condition, String what) {
    eventually(limit, condition, () -> what);
  }

  /** As {@link #eventually(Duration, BooleanSupplier, String)}, {@code what} asked at the failure: it can say what was seen. */
  public static void eventually(Duration limit, BooleanSupplier condition, Supplier<String> what) {
    long deadline = System.nanoTime() + limit.toNanos();
    while (System.nanoTime() < deadline) {
      if (condition.getAsBoolean()) {
        return;
      }
      sleep(100);
    }
    throw new AssertionError("not within " + limit + ": " + what.get());
  }

  /**
   * {@code times} times on {@code context}: {@code quietMs} after the last call's outcome (the first:
   * after the start), {@code call}. The outcomes in order, failures included.
   */
  public static <T> List<AsyncResult<T>> afterQuiet(Context context, long quietMs, int times,
      Supplier<Future<T>> call) {
    List<AsyncResult<T>> outcomes = new ArrayList<>();
    Promise<Void> done = Promise.promise();
    context.runOnContext(v -> callAfterQuiet(context, quietMs, times, call, outcomes, done));
    Http.await(done.future());
    return outcomes;
  }

  private static <T> void callAfterQuiet(Context context, long quietMs, int times, Supplier<Future<T>> call,
      List<AsyncResult<T>> outcomes, Promise<Void> done) {
    context.owner().setTimer(quietMs, t -> call.get().onComplete(outcome -> {
      outcomes.add(outcome);
      if (outcomes.size() == times) {
        done.complete();
      } else {
        callAfterQuiet(context, quietMs, times, call, outcomes, done);
      }
    }));
  }

  public static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }
}
