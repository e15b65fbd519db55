package dev.idemgate.support;

import java.time.Duration;
import java.util.function.BooleanSupplier;

/** Bounded waiting for tests: polling for a condition, and sleeping without checked exceptions. */
public final class Waits {
  private Waits() {}

  /** Polls every 100 ms until {@code condition} holds; fails naming {@code what} after {@code limit}. */
  public static void eventually(Duration limit, BooleanSupplier condition, String what) {
    long deadline = System.nanoTime() + limit.toNanos();
    while (System.nanoTime() < deadline) {
      if (condition.getAsBoolean()) {
        return;
      }
      sleep(100);
    }
    throw new AssertionError("not within " + limit + ": " + what);
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
