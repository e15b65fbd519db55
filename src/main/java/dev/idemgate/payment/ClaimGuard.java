package dev.idemgate.payment;

import io.vertx.core.Future;
import java.util.Optional;

/**
 * A check a new payment must pass after the Redis gate and before its PostgreSQL claim — so a
 * refused payment is never claimed or charged, and replays and in-flight twins never pay for the
 * check. The anomaly detector's duplicate-payload policy is one.
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
}
