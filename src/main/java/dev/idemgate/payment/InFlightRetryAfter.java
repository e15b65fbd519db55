package dev.idemgate.payment;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.StoreClaim;
import java.time.Duration;

/**
 * The 409 of a key in flight: when a retry can expect an answer (its {@code Retry-After}). A holder
 * that is alive answers within {@link GatewayConfig#holderAnswersWithin()} of its claim, so a young
 * claim's retry is told 1 s: concurrent twins, the common case. Past that, or past the lease, the
 * holder is presumed gone (its instance died, or hangs), and the answer comes only once recovery has
 * settled the record, {@link GatewayConfig#settledAfterLease()} after the lease ran out. Told 1 s
 * then, a client with a small retry budget gave up within seconds of a wait of about 45 s (with the
 * defaults), and its caller could pay again under a new key: a second charge. Only told: nothing is
 * decided on it, so the claimers' clocks (which date a Redis claim) only move the hint.
 */
final class InFlightRetryAfter {
  /** A claim still young: its holder is answering. */
  static final PayOutcome.InFlight ANSWERING = new PayOutcome.InFlight(1, false);

  private final long holderAnswersWithinMs;
  private final long leaseMs;
  private final long settledAfterLeaseMs;
  private final long recoveryIntervalMs;

  InFlightRetryAfter(GatewayConfig config) {
    this.holderAnswersWithinMs = config.holderAnswersWithin().toMillis();
    this.leaseMs = config.lease().toMillis();
    this.settledAfterLeaseMs = config.settledAfterLease().toMillis();
    this.recoveryIntervalMs = config.recoveryInterval().toMillis();
  }

  /**
   * A claim Redis holds, {@code age} old (null when its claim does not say: an earlier version's).
   * Its lease in Redis runs out a lease after the claim; PostgreSQL's a moment later (its claim
   * comes after), within the second the estimate adds.
   */
  PayOutcome.InFlight ofRedisClaim(Duration age) {
    if (age == null) {
      return ANSWERING;
    }
    return ofClaim(age.toMillis(), leaseMs - age.toMillis());
  }

  /** A claim PostgreSQL holds, its age and lease on PostgreSQL's clock. */
  PayOutcome.InFlight ofStoreClaim(StoreClaim.InFlight held) {
    long leaseLeftMs = held.leaseLeft().toMillis();
    if (held.takenOver()) {
      // Recovery (or an operator's verdict) is asking the provider: it answers when the inquiry
      // does, within the hold it took; past that hold, it died in turn and the next takeover answers.
      return leaseLeftMs > 0 ? ANSWERING : awaitingRecovery(leaseLeftMs);
    }
    return ofClaim(held.age().toMillis(), leaseLeftMs);
  }

  private PayOutcome.InFlight ofClaim(long ageMs, long leaseLeftMs) {
    return ageMs < holderAnswersWithinMs && leaseLeftMs > 0 ? ANSWERING : awaitingRecovery(leaseLeftMs);
  }

  /**
   * Until recovery has settled the record: the rest of the lease and {@link GatewayConfig#settledAfterLease()},
   * in whole seconds rounded up. A moment already past means recovery is behind (or runs on no
   * instance): its next pass is the next chance. Never more than from a fresh claim.
   */
  private PayOutcome.InFlight awaitingRecovery(long leaseLeftMs) {
    long untilSettledMs = Math.min(Math.max(leaseLeftMs + settledAfterLeaseMs, recoveryIntervalMs),
        leaseMs + settledAfterLeaseMs);
    return new PayOutcome.InFlight((int) Math.max(1, (untilSettledMs + 999) / 1000), true);
  }
}
