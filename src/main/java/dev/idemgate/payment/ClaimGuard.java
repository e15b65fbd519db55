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
   * What PostgreSQL said of the key of the payment {@link #check} judged, the first time it was asked:
   * {@code held} when it holds the key, so the request is a retry of that key's payment, no new
   * payment (a refusal is then not given, and the claim answers with that payment); false when the
   * key is new (claimed for this payment, or found free by a refusal's lookup), and when the store
   * could not say (the request got no payment, and the key's retries are not judged again). Redis
   * cannot tell: it may have lost the key, and for a pending payment it only points to PostgreSQL.
   * A guard that counts what it judged counts it here, never in {@link #check}.
   *
   * <p>Called once per check, before the answer; under a guard that only observes, possibly before
   * the check has answered. Must not fail.
   */
  default void keySettled(PaymentService.PayCommand cmd, boolean held) {}

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
