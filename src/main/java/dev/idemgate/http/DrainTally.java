package dev.idemgate.http;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * What the API verticles' drains left undone, summed over the verticles for the one warning the
 * gateway logs once they all stopped. Each verticle adds from its own event loop.
 */
public final class DrainTally {
  private final AtomicInteger paymentsCut = new AtomicInteger();

  /** Adds the payments a verticle still had under way when its drain ran out. */
  void paymentsCut(int count) {
    paymentsCut.addAndGet(count);
  }

  /** Payments still under way when the drain ran out, over every API verticle. */
  public int paymentsCut() {
    return paymentsCut.get();
  }
}
