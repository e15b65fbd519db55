package dev.idemgate.payment;

import io.vertx.core.Future;
import java.util.Optional;
import java.util.function.Function;

/**
 * A check a new payment must pass after the Redis gate and before its PostgreSQL claim — so a
 * refused payment is never claimed or charged, and replays and in-flight twins never pay for the
 * check. The anomaly detector's duplicate-payload policy is one.
 *
 * <p>A guard that only observes and never refuses ({@link #observing}) runs beside the claim
 * instead of before it: the payment does not wait for it, only the answer does, so that what it
 * recorded is there by the time the client hears back.
 */
@FunctionalInterface
public interface ClaimGuard {
  /** Lets everything through. */
  ClaimGuard NONE = cmd -> Future.succeededFuture(Optional.empty());

  /**
   * Empty to go on; otherwise the reason for refusing, which the caller that supplied the guard
   * renders. Must not fail: a check that cannot decide lets the payment through.
   */
  Future<Optional<Object>> check(PaymentService.PayCommand cmd);

  /** False for a guard that never refuses: it then runs beside the claim (see the class comment). */
  default boolean mayRefuse() {
    return true;
  }

  /**
   * What became of the key of the payment {@link #check} judged, as PostgreSQL answered for it. Redis
   * cannot tell: it may have lost the key, and for a pending payment it only points to PostgreSQL. A
   * guard that counts what it judged counts it here, never in {@link #check}.
   *
   * <p>Called at most once per check, before the answer (not when the payment failed in a way that
   * gives neither, an internal error); under a guard that only observes, possibly before the check has
   * answered. Must not fail.
   */
  default void keySettled(PaymentService.PayCommand cmd, KeyFate fate) {}

  /** What became of a checked payment's key ({@link #keySettled}). */
  enum KeyFate {
    /**
     * The key was new and now stands for this request: its claim took the key and the provider charged,
     * declined or may have charged the payment (201, 402, 202); or, for a refusal, PostgreSQL found the
     * key free and the refusal is final (409). Exactly one request per key gets this, whichever of
     * several racing ones it is, since only one claim takes a key.
     */
    NEW,
    /**
     * PostgreSQL holds the key for a payment of its own: the request is a retry of that payment (in
     * flight, completed, pending, or another payload's: 422), no new payment.
     */
    HELD,
    /**
     * Nothing stands under the key for this request: PostgreSQL could not answer (503, the key is not
     * consumed), or the claim took the key but the provider did not charge (502, the key released or,
     * failing that, held until recovery frees it). The client's retry of the key is a new attempt.
     */
    NOT_TAKEN
  }

  /**
   * The payment this guard checked was neither claimed nor charged under its key (its claim failed,
   * the key holds another payment, or the provider refused it). The caller waits for it before it
   * answers and, for a failed claim, before it frees the key's Redis claim, so that no retry of the
   * key is judged while what the check wrote still stands. Best effort.
   */
  default Future<Void> notCharged(PaymentService.PayCommand cmd) {
    return Future.succeededFuture();
  }

  /** A guard that observes each new payment and never refuses one; a failed observation is ignored. */
  static ClaimGuard observing(Function<PaymentService.PayCommand, Future<?>> observe) {
    return new ClaimGuard() {
      @Override
      public Future<Optional<Object>> check(PaymentService.PayCommand cmd) {
        return observe.apply(cmd).otherwiseEmpty().map(v -> Optional.empty());
      }

      @Override
      public boolean mayRefuse() {
        return false;
      }
    };
  }
}
