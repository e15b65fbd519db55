package dev.idemgate.http;

import java.util.Objects;
import java.util.function.Consumer;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Requests of one verticle waiting for something with a deadline, oldest first, so that one
 * periodic sweep finds those past it instead of a Vert.x timer per request: a body that has not
 * fully arrived ({@code request_body_timeout}), an HTTP/2 answer the client has not taken
 * ({@link UndeliveredAnswers}). A timer set and cancelled per payment request is an entry in the
 * Vert.x timer map, a close hook on the verticle's context and a task in Netty's scheduled-task
 * queue, each added and removed again microseconds later, since almost every body arrives with its
 * headers: in paired replay runs the sweep served 1.05× the replays of the timers, at 0.95× the
 * gateway's CPU per replay (docs/performance-history.md, session 15).
 *
 * <p>Every request of one list gets the same timeout, so deadlines only grow from head to tail and a
 * sweep stops at the first request still in time. A request leaves the list the moment what it
 * waited for happens ({@link Waiting#done()}, constant time), or at the sweep.
 *
 * <p>Confined to one event loop: not thread-safe. Its verticle adds, finishes and sweeps on its
 * own event-loop thread (requests and the periodic timer run on contexts of that loop).
 *
 * @param <T> what is waiting: the routing context in the gateway, anything in tests
 */
final class Deadlines<T> {
  private static final Logger log = LoggerFactory.getLogger(Deadlines.class);
  private final long timeoutNanos;
  private Waiting head;
  private Waiting tail;

  Deadlines(long timeoutMillis) {
    this.timeoutNanos = timeoutMillis * 1_000_000L;
  }

  /**
   * How often the gateway sweeps: a tenth of the timeout, between 10 ms and 1 s. A body past its
   * deadline is therefore answered at most that much late (1 s with the default 30 s timeout).
   */
  static long sweepIntervalMillis(long timeoutMillis) {
    return Math.max(10, Math.min(1_000, timeoutMillis / 10));
  }

  /** Starts the clock for {@code item} at {@code nowNanos} ({@link System#nanoTime()}), once its headers are in. */
  Waiting add(T item, long nowNanos) {
    // A null item would read as "done" (see Waiting#done) and never leave the head: the sweep would spin.
    Waiting waiting = new Waiting(Objects.requireNonNull(item, "item"), nowNanos + timeoutNanos);
    if (tail == null) {
      head = waiting;
    } else {
      tail.next = waiting;
      waiting.prev = tail;
    }
    tail = waiting;
    return waiting;
  }

  /**
   * Takes every item whose deadline is at or before {@code nowNanos} out of the list, oldest first,
   * and hands it to {@code expired}. An item that {@code expired} fails on is logged and does not
   * hold back the others.
   */
  void sweep(long nowNanos, Consumer<? super T> expired) {
    while (head != null && head.deadlineNanos - nowNanos <= 0) {
      Waiting first = head;
      T item = first.item;
      first.done();
      try {
        expired.accept(item);
      } catch (RuntimeException e) {
        log.warn("acting on a request past its deadline failed", e);
      }
    }
  }

  /**
   * Takes every item {@code gone} holds true for out of the list, whatever its deadline, and returns
   * how many. Walks the whole list: for a caller that needs room, not for every request.
   */
  int removeIf(Predicate<? super T> gone) {
    int removed = 0;
    for (Waiting w = head; w != null; ) {
      Waiting next = w.next;
      if (gone.test(w.item)) {
        w.done();
        removed++;
      }
      w = next;
    }
    return removed;
  }

  /** Items still waiting; walks the list (for tests). */
  int size() {
    int size = 0;
    for (Waiting w = head; w != null; w = w.next) {
      size++;
    }
    return size;
  }

  /** One request in the list, until {@link #done()}. */
  final class Waiting {
    private final long deadlineNanos;
    private T item;
    private Waiting prev;
    private Waiting next;

    private Waiting(T item, long deadlineNanos) {
      this.item = item;
      this.deadlineNanos = deadlineNanos;
    }

    /** What the request waited for happened: no deadline any more. Safe to call more than once. */
    void done() {
      if (item == null) {
        return;
      }
      if (prev == null) {
        head = next;
      } else {
        prev.next = next;
      }
      if (next == null) {
        tail = prev;
      } else {
        next.prev = prev;
      }
      prev = null;
      next = null;
      item = null; // nothing of the request is held once it is done
    }
  }
}
