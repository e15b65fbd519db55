package dev.idemgate.http;

import java.util.concurrent.atomic.AtomicBoolean;

/** Shared between start-up, shutdown and the readiness probe: once draining, the instance reports not ready. */
public final class ReadinessState {
  private final AtomicBoolean draining = new AtomicBoolean();

  public boolean draining() {
    return draining.get();
  }

  public void startDraining() {
    draining.set(true);
  }
}
