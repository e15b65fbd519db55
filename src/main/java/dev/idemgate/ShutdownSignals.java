package dev.idemgate;

import java.time.Duration;
import java.util.function.IntConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * What SIGTERM and SIGINT do to a running gateway: the first starts the drain and logs its
 * {@code draining} line before it returns; each later one is ignored, with one line of its own, after
 * that one. Only the first starts the drain. Hazard: a later one (a second kill, Ctrl-C pressed
 * again) used to start a second drain thread whose close() returned at once, the drain being under
 * way, and whose System.exit(0) then ended the process mid-drain (before session 31). The drain is
 * bounded by drain_timeout; SIGKILL is there for whoever cannot wait.
 */
final class ShutdownSignals {
  private static final Logger log = LoggerFactory.getLogger(ShutdownSignals.class);

  /** The part of the gateway the signals drive. */
  interface Drainable {
    /** Turns readiness to DRAINING and logs the {@code draining} line; only the first call does. */
    void startDraining();

    /** The whole stop: the drain (starting it if need be), then the close. Blocks. */
    void close();
  }

  private final Drainable gateway;
  private final Duration drainTimeout;
  private final IntConsumer exit;
  /** Guarded by this: the signals' handler threads may run at once (two signals sent together). */
  private boolean draining;

  /**
   * @param exit called on the drain thread with the status to exit with ({@link Main#drain}), once the
   *     gateway closed
   */
  ShutdownSignals(Drainable gateway, Duration drainTimeout, IntConsumer exit) {
    this.gateway = gateway;
    this.drainTimeout = drainTimeout;
    this.exit = exit;
  }

  /**
   * Handles SIGTERM and SIGINT. Hazard: a signal the process was started with ignored stays ignored
   * (the JVM keeps the disposition it inherited): a shell ignores SIGINT for the jobs it starts in
   * the background ({@code java -jar idemgate.jar &} in a script, nohup), and such a gateway neither
   * drains nor stops on SIGINT, and logs nothing about it. Said once at start-up instead.
   */
  void install() {
    for (String name : new String[] {"TERM", "INT"}) {
      SignalHandler before = Signal.handle(new Signal(name), signal -> received(signal.getName()));
      if (before == SignalHandler.SIG_IGN) {
        log.warn("SIG{} was ignored by whatever started this process (a shell does so for a job it runs in the background) "
            + "and stays ignored: it neither drains nor stops the gateway; send SIGTERM", name);
      }
    }
  }

  /**
   * A signal arrived (on a thread the JVM starts for it): the first starts the drain, later ones are
   * ignored. The draining line is logged here, under the lock, before the close goes to a thread of
   * its own: a later signal's line then always comes after it. Before session 33 the drain thread
   * logged it, and a second SIGTERM sent with the first (timeout(1) signals the process, then its
   * group) could log "ignored" before "draining".
   */
  synchronized void received(String signal) {
    if (draining) {
      log.info("SIG{} ignored: the drain is under way and ends within drain_timeout ({} ms)", signal, drainTimeout.toMillis());
      return;
    }
    draining = true;
    gateway.startDraining();
    new Thread(() -> exit.accept(Main.drain(gateway::close)), "idemgate-drain").start();
  }
}
