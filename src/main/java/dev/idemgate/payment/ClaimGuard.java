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
   * What became of the refusal {@link #check} gave: {@code refused} when the payment was refused with
   * it (also when the store could not say whether the key is held: the request was not let through),
   * false when PostgreSQL holds the key, so the request is a retry of that key's payment, no new
   * payment, and goes on to the claim. A guard that counts its refusals counts them here, once final,
   * never in {@link #check}. Called once per refusal, before the answer; must not fail.
   */
  default void refusalSettled(PaymentService.PayCommand cmd, boolean refused) {}

  /**
   * The payment this guard checked was neither claimed nor charged under its key (the key holds
   * another payment, or the provider refused it and the key was released). Best effort.
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
