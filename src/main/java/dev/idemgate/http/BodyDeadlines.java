package dev.idemgate.http;

import java.util.function.Consumer;

/**
 * The requests of one event loop whose body has not fully arrived, oldest first, so that one
 * periodic sweep finds those past {@code request_body_timeout} instead of a Vert.x timer per
 * request. A timer set and cancelled per payment request cost replays about 8 % of their
 * throughput (paired runs, docs/performance.md, session 15): each one is an entry in the Vert.x
 * timer map and in Netty's scheduled-task queue, added and removed again microseconds later,
 * since almost every body arrives with its headers.
 *
 * <p>Every request gets the same timeout, so deadlines only grow from head to tail and a sweep
 * stops at the first request still in time. A request leaves the list the moment its body is in or
 * it is answered ({@link Waiting#done()}, constant time), so the list holds only the requests
 * actually waiting for their body.
 *
 * <p>Confined to one event loop: not thread-safe. Its verticle adds, finishes and sweeps on its
 * own context.
 *
 * @param <T> what is waiting: the routing context in the gateway, anything in tests
 */
final class BodyDeadlines<T> {
  private final long timeoutNanos;
  private Waiting head;
  private Waiting tail;
  private int size;

  BodyDeadlines(long timeoutMillis) {
    this.timeoutNanos = timeoutMillis * 1_000_000L;
  }

  /**
   * How often the gateway sweeps: a tenth of the timeout, between 10 ms and 1 s. A body past its
   * deadline is therefore answered at most that much late (1 s with the default 30 s timeout).
   */
  static long sweepIntervalMillis(long timeoutMillis) {
    return Math.max(10, Math.min(1_000, timeoutMillis / 10));
  }

  /** Starts the clock for {@code item}, whose headers arrived at {@code nowNanos} ({@link System#nanoTime()}). */
  Waiting add(T item, long nowNanos) {
    Waiting waiting = new Waiting(item, nowNanos + timeoutNanos);
    if (tail == null) {
      head = waiting;
    } else {
      tail.next = waiting;
      waiting.prev = tail;
    }
    tail = waiting;
    size++;
    return waiting;
  }

  /** Takes every item whose deadline is at or before {@code nowNanos} out of the list, oldest first, and hands it to {@code expired}. */
  void sweep(long nowNanos, Consumer<? super T> expired) {
    while (head != null && head.deadlineNanos - nowNanos <= 0) {
      Waiting first = head;
      T item = first.item;
      first.done();
      expired.accept(item);
    }
  }

  /** Items still waiting for their body. */
  int size() {
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

    /** The body is in, or the request was answered: no deadline any more. Safe to call more than once. */
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
      size--;
    }
  }
}
