package dev.idemgate.payment;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.ClaimRequest;
import dev.idemgate.idempotency.Completion;
import dev.idemgate.idempotency.CompletionNotifier;
import dev.idemgate.idempotency.Fingerprint;
import dev.idemgate.idempotency.GateDecision;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.RecordState;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.idempotency.ReplayCache;
import dev.idemgate.idempotency.StoreClaim;
import dev.idemgate.idempotency.StoreUnavailable;
import dev.idemgate.idempotency.StoredResponse;
import dev.idemgate.observability.GatewayMetrics;
import dev.idemgate.observability.ThrottledWarning;
import dev.idemgate.provider.ChargeRequest;
import dev.idemgate.provider.ProviderClient;
import dev.idemgate.provider.ProviderOutcome;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The request path of DESIGN §1, steps 4-8: Redis gate, PostgreSQL claim committed before the
 * provider is called, the charge over the event bus, the fenced completion in PostgreSQL, then
 * Redis. The invariant every branch keeps: the provider is only called by the request whose
 * PostgreSQL claim committed, so losing Redis can never cause a second charge.
 */
public final class PaymentService {
  private static final Logger log = LoggerFactory.getLogger(PaymentService.class);
  static final String OPERATION = "payments.create";
  private static final int STORE_RETRY_AFTER_SECONDS = 2;
  /** The last try within a lease comes this long before it ends: past it the record is recovery's. */
  static final long LAST_TRY_BEFORE_LEASE_END_MS = 500;
  /** First wait before a completion PostgreSQL did not take is written again; it doubles each time. */
  private static final long FIRST_RECORD_RETRY_MS = 500;
  /**
   * First look for a claim that answered 503 but may have committed: the server ends a statement
   * at most a second after the request's deadline (statement_timeout); it doubles each time.
   */
  private static final long FIRST_UNANSWERED_LOOK_MS = 1_000;

  private final Vertx vertx;
  /** While PostgreSQL is down every payment fails so: one line a second, not one per payment. */
  private final ThrottledWarning storeDownWarning = new ThrottledWarning(log);
  private final RedisGate gate;
  private final CompletionNotifier notifier;
  private final GatewayMetrics metrics;
  private final IdempotencyStore store;
  private final ProviderClient provider;
  private final String ledgerProvider;
  private final GatewayConfig config;
  /** Payments of {@link #pay(PayCommand, int, ClaimGuard)} not yet answered (counted wherever their futures end). */
  private final AtomicInteger paymentsUnderway = new AtomicInteger();
  private static final long SETTLED_POLL_MS = 20;
  private final ReplayCache replays;
  /** How long after its claim a charge may still be sent: the lease, less a margin for clock and queueing. */
  private final long sendWindowNanos;
  private final long leaseNanos;
  private static final Duration SEND_MARGIN = Duration.ofSeconds(1);
  /**
   * When a key whose release failed is free again at the latest: recovery releases a claim the
   * provider never saw once a late charge is impossible, at its next pass.
   */
  private final int heldKeyRetryAfterSeconds;
  private final InFlightRetryAfter inFlightRetryAfter;
  private final PendingRetryAfter pendingRetryAfter;
  /** How long after its 202 a pending payment is first asked about: recovery_backoff's first step. */
  private final Duration firstInquiry;
  /**
   * This gateway's wall clock, for what is only told: payment ids and the key expiry a client is
   * given. Nothing PostgreSQL compares with its own clock is taken from it. A test gives one that
   * disagrees with PostgreSQL's.
   */
  private final Clock clock;

  public PaymentService(Vertx vertx, RedisGate gate, IdempotencyStore store, ProviderClient provider,
      CompletionNotifier notifier, GatewayMetrics metrics, GatewayConfig config, ReplayCache replays) {
    this(vertx, gate, store, provider, notifier, metrics, config, replays, Clock.systemUTC());
  }

  public PaymentService(Vertx vertx, RedisGate gate, IdempotencyStore store, ProviderClient provider,
      CompletionNotifier notifier, GatewayMetrics metrics, GatewayConfig config, ReplayCache replays, Clock clock) {
    this.vertx = vertx;
    this.clock = clock;
    this.gate = gate;
    this.replays = replays;
    this.metrics = metrics;
    this.notifier = notifier;
    this.store = store;
    this.provider = provider;
    this.ledgerProvider = config.ledgerProvider();
    this.config = config;
    this.sendWindowNanos = config.lease().minus(SEND_MARGIN).toNanos();
    this.leaseNanos = config.lease().toNanos();
    this.heldKeyRetryAfterSeconds = (int) Math.max(1, (config.heldKeyFreedWithin().toMillis() + 999) / 1000);
    this.inFlightRetryAfter = new InFlightRetryAfter(config);
    this.pendingRetryAfter = new PendingRetryAfter(config);
    this.firstInquiry = config.nextInquiryAfter(0);
  }

  /**
   * One {@code POST /pay}: who asks, with which key, for what, the payload's fingerprint, and the
   * SHA-256 of the body's bytes (for the {@link ReplayCache}; null to leave the cache alone).
   */
  public record PayCommand(String merchantId, IdempotencyKey key, PaymentRequest request, String fingerprint,
      String bodyDigest, String fingerprintWithoutNulls) {

    /** @param body the parsed body: both fingerprints are taken from it */
    public PayCommand(String merchantId, IdempotencyKey key, PaymentRequest request, JsonObject body, String bodyDigest) {
      this(merchantId, key, request, PaymentService.fingerprint(body), bodyDigest,
          PaymentService.fingerprintWithoutNulls(body));
    }

    /** The same payment under the fingerprint of its body without null members, with no second one to try. */
    PayCommand withoutNulls() {
      return new PayCommand(merchantId, key, request, fingerprintWithoutNulls, bodyDigest, null);
    }
  }

  /**
   * Like {@link #pay(PayCommand)}, but a request whose twin is in flight waits up to
   * {@code waitSeconds} for it ({@code Prefer: wait=N}) and replays its outcome: woken by the twin's
   * completion notice, it looks again once, then answers 409 if the twin is still not done. Every
   * end of the twin wakes it ({@link RedisGate#wakeWaiters}), and it answers what a retry would get
   * then: the stored answer, or, after a twin that stored none (503, 502, 422, 500), the key free
   * to claim, the 422 of a key holding another payload, or 409 for a key held until recovery
   * frees it. Only a twin answered 202 because PostgreSQL did not take its outcome wakes it later,
   * when a later write of that outcome lands ({@link #recordLater}), or not within the wait. What a
   * request that waited comes to is a {@link PayOutcome.Waited}; every other outcome is as from
   * {@link #pay(PayCommand, ClaimGuard)}.
   */
  public Future<PayOutcome> pay(PayCommand cmd, int waitSeconds, ClaimGuard guard) {
    paymentsUnderway.incrementAndGet();
    Future<PayOutcome> paid = payWaiting(cmd, waitSeconds, guard);
    paid.onComplete(done -> {
      paymentsUnderway.decrementAndGet();
      if (done.failed()) {
        // A failure nothing expected (500): twins waiting on the key look again now, not at the end
        // of their wait, and get what a retry gets (payOnce freed this request's Redis claim, if
        // it had one, and woke them already; this wakes those of a request that had none).
        gate.wakeWaiters(cmd.merchantId(), cmd.key());
      }
    });
    return paid;
  }

  /**
   * Completes once no payment of this service is under way, or at {@code deadlineNanos}
   * ({@link System#nanoTime()}), whichever comes first. A
   * payment whose client hung up is no open HTTP request, so the server's drain does not wait for
   * it; stopping the store under it would leave its claim PROCESSING (and its retries at 409) until
   * another instance's recovery, although the drain had time to finish it.
   */
  public Future<Void> settled(long deadlineNanos) {
    Promise<Void> settled = Promise.promise();
    checkSettled(settled, deadlineNanos);
    return settled.future();
  }

  /** Payments of this service not yet answered: after {@link #settled}, those the drain ran out on. */
  public int underway() {
    return paymentsUnderway.get();
  }

  private void checkSettled(Promise<Void> settled, long deadlineNanos) {
    if (paymentsUnderway.get() == 0 || System.nanoTime() >= deadlineNanos) {
      settled.complete();
    } else {
      vertx.setTimer(SETTLED_POLL_MS, id -> checkSettled(settled, deadlineNanos));
    }
  }

  private Future<PayOutcome> payWaiting(PayCommand cmd, int waitSeconds, ClaimGuard guard) {
    if (waitSeconds <= 0 || notifier == null) {
      return pay(cmd, guard);
    }
    return pay(cmd, guard).compose(first -> {
      if (!(first instanceof PayOutcome.InFlight)) {
        return Future.succeededFuture(first);
      }
      CompletionNotifier.Wait wait = notifier.register(cmd.merchantId(), cmd.key(), waitSeconds * 1000L);
      // Look again once subscribed: a completion between the first look and the subscription is not missed.
      return wait.ready().otherwise((Void) null)
          .compose(v -> pay(cmd, guard))
          .compose(second -> second instanceof PayOutcome.InFlight ? wait.done().compose(v -> pay(cmd, guard))
              : Future.succeededFuture(second))
          .map(after -> (PayOutcome) new PayOutcome.Waited(after, waitSeconds))
          .eventually(() -> {
            wait.cancel();
            return Future.succeededFuture();
          });
    });
  }

  public Future<PayOutcome> pay(PayCommand cmd) {
    return pay(cmd, ClaimGuard.NONE);
  }

  /**
   * One payment. A body with a top-level member sent as {@code null} is the payment of the body
   * without it, as validation reads them: when the key is held under the fingerprint of the body
   * without its null members (its first request left the field out), the payment is looked up again
   * under that one. Only then, so that the second look finds the payment: it would claim a new one
   * only if the key were freed in between.
   *
   * <p>Claims are still stored under the body as sent, nulls included, as by every earlier version:
   * during a rolling upgrade an instance of an earlier version then agrees on every record a newer
   * one writes, where it would answer 422 "use a new key" (a second charge for a client that obeys)
   * to the retry of a payment stored without its nulls. So a first request with a null and a retry
   * without it still differ (README, known limits).
   */
  public Future<PayOutcome> pay(PayCommand cmd, ClaimGuard guard) {
    Future<PayOutcome> paid = payOnce(cmd, guard);
    if (cmd.fingerprintWithoutNulls() == null) {
      return paid;
    }
    return paid.compose(outcome -> outcome instanceof PayOutcome.KeyReused reused
            && cmd.fingerprintWithoutNulls().equals(reused.heldFingerprint())
        ? payOnce(cmd.withoutNulls(), guard)
        : Future.succeededFuture(outcome));
  }

  /** One payment: the gate, then (for a new payment only) the guard, then the claim and the charge. */
  private Future<PayOutcome> payOnce(PayCommand cmd, ClaimGuard guard) {
    return metrics.timeGate(() -> gate.claim(cmd.merchantId(), cmd.key(), cmd.fingerprint())).compose(decision -> {
      if (decision instanceof GateDecision.Replay replay) {
        replays.remember(cmd.merchantId(), cmd.key(), cmd.bodyDigest(), replay.response());
        return Future.succeededFuture(new PayOutcome.Replayed(replay.response()));
      } else if (decision instanceof GateDecision.InFlight inFlight) {
        return Future.succeededFuture(inFlightRetryAfter.ofRedisClaim(inFlight.age()));
      } else if (decision instanceof GateDecision.Mismatch mismatch) {
        return Future.succeededFuture(new PayOutcome.KeyReused(mismatch.heldFingerprint()));
      }
      // Claimed in Redis, or AskStore (PostgreSQL decides alone): a new payment, as far as Redis knows.
      String redisClaim = decision instanceof GateDecision.Claimed claimed ? claimed.token() : null;
      return newPayment(cmd, redisClaim, guard).recover(failure -> {
        // A failure nothing expected (500). Left in place, this request's Redis claim would answer
        // every retry 409 "in flight" until its lease ends, though nothing may be in flight at all
        // (a failure before the PostgreSQL claim, which charged nothing). Freed, a retry asks
        // PostgreSQL, which knows: a key it holds is still refused, a free one is paid at once.
        // Twins waiting on the claim are woken with it (and again by pay, for requests without one).
        return releaseAndWake(cmd, redisClaim).transform(v -> Future.failedFuture(failure));
      });
    });
  }

  /** A payment Redis did not refuse: the guard, then the claim in PostgreSQL and the charge. */
  private Future<PayOutcome> newPayment(PayCommand cmd, String redisClaim, ClaimGuard guard) {
    if (!guard.mayRefuse()) {
      // An observer: it runs beside the claim and the charge, and only the answer waits for it
      // (the check never fails, see ClaimGuard).
      Future<Optional<Object>> observed = guard.check(cmd);
      return claimInStore(cmd, redisClaim, guard)
          .compose(outcome -> observed.compose(ignored -> told(guard, cmd, outcome)));
    }
    return guard.check(cmd).compose(refusal -> refusal.isPresent()
        ? refuseUnlessHeld(cmd, redisClaim, guard, refusal.get())
        : claimInStore(cmd, redisClaim, guard).compose(outcome -> told(guard, cmd, outcome)));
  }

  /**
   * Tells the guard that the payment it let through was neither claimed nor charged under its key
   * (422: the key holds another payment; 502: the provider did not charge it, its key released or left
   * for recovery to free), so that it does not hold that key against a later payment of the same
   * payload. Then the outcome, as it was.
   */
  private static Future<PayOutcome> told(ClaimGuard guard, PayCommand cmd, PayOutcome outcome) {
    boolean notCharged = outcome instanceof PayOutcome.KeyReused || outcome instanceof PayOutcome.ProviderUnavailable;
    return notCharged ? guard.notCharged(cmd).otherwiseEmpty().map(outcome) : Future.succeededFuture(outcome);
  }

  /**
   * A refusal is for a new payment only. Redis cannot always tell that a key is new: it may have
   * lost the key, and for a pending payment it only points to PostgreSQL. So a key PostgreSQL
   * holds is a retry and goes on to the claim, which answers with what that key's payment is (the
   * claim never takes a key that is held). The lookup costs nothing on the common path: it runs for
   * refusals only. Only its answer makes the refusal final, so only then does the guard hear whether
   * the key is held ({@link ClaimGuard#keySettled}): a held key's retry is no refused payment, and a
   * failed lookup (503) refused nothing.
   */
  private Future<PayOutcome> refuseUnlessHeld(PayCommand cmd, String redisClaim, ClaimGuard guard, Object refusal) {
    Future<Boolean> held = metrics.timeStore("held", () -> store.holds(cmd.merchantId(), cmd.key()));
    held.onComplete(lookup -> guard.keySettled(cmd, lookup.failed() ? ClaimGuard.KeyFate.NOT_TAKEN
        : lookup.result() ? ClaimGuard.KeyFate.HELD : ClaimGuard.KeyFate.NEW));
    return held.compose(isHeld -> isHeld
            ? claimInStore(cmd, redisClaim, ClaimGuard.NONE) // the guard has heard: a retry
            : releaseRedis(cmd, redisClaim).compose(v -> gate.wakeWaiters(cmd.merchantId(), cmd.key()))
                .map(v -> (PayOutcome) new PayOutcome.Refused(refusal)))
        .recover(failure -> storeDown(cmd, redisClaim, "key lookup for a refused payment", failure));
  }

  /**
   * PostgreSQL failed before anything was charged: 503, with the Redis claim freed so that the
   * client's retry is not held off by a 409. Any other failure goes on as it is.
   */
  private Future<PayOutcome> storeDown(PayCommand cmd, String redisClaim, String what, Throwable failure) {
    if (!(failure instanceof StoreUnavailable)) {
      return Future.failedFuture(failure);
    }
    storeDownWarning.warn("{} failed, answering 503: {}", what, failure.getMessage());
    return releaseAndWake(cmd, redisClaim).map(v -> new PayOutcome.StoreDown(STORE_RETRY_AFTER_SECONDS));
  }

  /**
   * @param redisClaim the value this request wrote in Redis, or null when Redis did not claim for it
   * @param guard the guard that checked this payment, told what became of its key ({@link ClaimGuard#keySettled}):
   *     held, by the claim's answer (only the claim tells a new key from a held one); not taken, when
   *     the claim failed; and, for a claim that took the key, new or not taken by the charge's outcome
   */
  private Future<PayOutcome> claimInStore(PayCommand cmd, String redisClaim, ClaimGuard guard) {
    PaymentRequest r = cmd.request();
    ClaimRequest claim = new ClaimRequest(cmd.merchantId(), cmd.key(), cmd.fingerprint(),
        PaymentJson.newPaymentId(clock.instant()), r.amount(), r.currency(), r.merchantReference(), r.description(),
        r.metadata());
    long sentAt = System.nanoTime();
    Future<StoreClaim> claimed = metrics.timeStore("claim", () -> store.claim(claim));
    claimed.onComplete(answer -> {
      if (answer.failed()) {
        guard.keySettled(cmd, ClaimGuard.KeyFate.NOT_TAKEN); // nothing claimed, nothing charged
      } else if (!(answer.result() instanceof StoreClaim.Claimed)) {
        guard.keySettled(cmd, ClaimGuard.KeyFate.HELD);
      }
    });
    claimed.onFailure(failure -> {
      // A claim the queue gave up on was never sent: there is nothing to look for.
      if (failure instanceof StoreUnavailable unavailable && unavailable.reachedDatabase()) {
        releaseUnansweredLater(cmd, claim.paymentId(), sentAt);
      }
    });
    return claimed
        .compose(decision -> {
          if (decision instanceof StoreClaim.Claimed owned) {
            // Told after the charge: a claim the provider did not charge (502) stands for nothing,
            // and the key's retry may take it again.
            return charge(cmd, owned, redisClaim, sentAt, guard).onSuccess(outcome -> guard.keySettled(cmd,
                outcome instanceof PayOutcome.ProviderUnavailable ? ClaimGuard.KeyFate.NOT_TAKEN : ClaimGuard.KeyFate.NEW));
          } else if (decision instanceof StoreClaim.Completed done) {
            replays.remember(cmd.merchantId(), cmd.key(), cmd.bodyDigest(), done.response());
            return cached(redisClaim, () -> gate.complete(cmd.merchantId(), cmd.key(), cmd.fingerprint(), done.response(),
                redisClaim))
                .map(v -> new PayOutcome.Replayed(done.response()));
          } else if (decision instanceof StoreClaim.Pending pending) {
            return cached(redisClaim, () -> gate.markPending(cmd.merchantId(), cmd.key(), cmd.fingerprint(),
                    config.keyTtlFor(cmd.merchantId()), redisClaim))
                .map(v -> new PayOutcome.Replayed(pending.response(), pendingRetryAfter.untilAsked(pending.nextInquiryIn())));
          } else if (decision instanceof StoreClaim.InFlight inFlight) {
            // Twins that waited on this request's Redis claim are not woken: the request that holds
            // the key wakes them with its answer once it completes.
            return releaseRedis(cmd, redisClaim).map(v -> inFlightRetryAfter.ofStoreClaim(inFlight));
          }
          StoreClaim.Mismatch mismatch = (StoreClaim.Mismatch) decision; // the one answer left
          return releaseAndWake(cmd, redisClaim).map(v -> new PayOutcome.KeyReused(mismatch.heldFingerprint()));
        })
        .recover(failure -> claimed.failed()
            // Nothing claimed, nothing charged: the guard gives back what its check wrote before the
            // Redis claim goes, so that no retry of the key passes the gate while it still stands.
            ? guard.notCharged(cmd).otherwiseEmpty().compose(v -> storeDown(cmd, redisClaim, "claim", failure))
            : storeDown(cmd, redisClaim, "claim", failure));
  }

  /**
   * After a claim answered 503, deletes that claim if it committed after all (late, past the
   * deadline, or before a follow-up read failed), so that the client's retry finds the key free
   * instead of 409 until recovery releases it after the lease. A claim may commit late: a statement
   * ends at the server within its deadline plus a second, but one that waited for a connection or
   * behind another statement starts late. So it keeps looking, with doubling waits, for as long as
   * the lease lasts (after that recovery frees the key), and stops once it deleted one.
   */
  private void releaseUnansweredLater(PayCommand cmd, String paymentId, long sentAt) {
    retryWithinLease(sentAt + leaseNanos, FIRST_UNANSWERED_LOOK_MS,
        () -> store.releaseUnanswered(cmd.merchantId(), cmd.key(), paymentId).map(released -> {
          if (released) {
            log.info("payment {}: its claim committed after the request had answered 503; released, the key is free",
                paymentId);
            gate.wakeWaiters(cmd.merchantId(), cmd.key()); // twins that found that claim in flight
          }
          return released;
        }),
        () -> {});
  }

  /**
   * Runs {@code attempt} after {@code waitMs}, then again with the wait doubled each time, until it
   * yields true, or until the lease ends ({@code gaveUp} then runs): past the lease the record is
   * recovery's. A failed attempt counts as not done.
   */
  private void retryWithinLease(long leaseEndsNanos, long waitMs, Supplier<Future<Boolean>> attempt, Runnable gaveUp) {
    long delay = nextTry(waitMs, TimeUnit.NANOSECONDS.toMillis(leaseEndsNanos - System.nanoTime()));
    if (delay < 0) {
      gaveUp.run();
      return;
    }
    vertx.setTimer(delay, timer -> attempt.get().otherwise(false).onSuccess(done -> {
      if (!done) {
        retryWithinLease(leaseEndsNanos, waitMs * 2, attempt, gaveUp);
      }
    }));
  }

  /**
   * How long to wait before the next try: {@code waitMs}, or, when that would come after the lease,
   * one last try {@link #LAST_TRY_BEFORE_LEASE_END_MS} before it ends; -1 when there is no time left
   * for one. With the default 30 s lease and a first wait of 1 s the tries come at 1, 3, 7 and 15 s,
   * then at 29.5 s: without that last one, a claim that committed after 15 s (a statement queued,
   * then waiting for a connection, then running to its deadline) kept its key at 409 for a minute.
   */
  static long nextTry(long waitMs, long leaseLeftMs) {
    long lastTry = leaseLeftMs - LAST_TRY_BEFORE_LEASE_END_MS;
    if (lastTry <= 0) {
      return -1;
    }
    return Math.min(waitMs, lastTry);
  }

  /**
   * @param createdAtNanos {@link System#nanoTime()} before the claim waited in the group queue (and,
   *     for a claim sent again after losing a race in its group, before its first sending), so before
   *     the statement in which PostgreSQL stamped its {@code created_at}
   */
  private Future<PayOutcome> charge(PayCommand cmd, StoreClaim.Claimed owned, String redisClaim, long createdAtNanos,
      ClaimGuard guard) {
    PaymentRequest r = cmd.request();
    // The charge is sent within the lease counted from the earlier of the two moments, both before
    // created_at: recovery and operator verdicts take "created_at + lease + 2 x provider_timeout",
    // on PostgreSQL's clock, as the moment past which no charge of this payment can land
    // (GatewayConfig#lateChargeWindow). Counted on this process's monotonic clock from before that,
    // the send deadline comes earlier in real time, whatever the wall clocks read.
    ChargeRequest charge = new ChargeRequest(owned.providerKey(), r.amount(), r.currency(), r.source(), owned.paymentId(),
        Math.min(owned.claimedAtNanos(), createdAtNanos) + sendWindowNanos);
    long sent = System.nanoTime();
    return metrics.traceProvider(() -> provider.charge(charge)).compose(outcome -> {
      metrics.providerCall(ProviderClient.outcomeName(outcome), sent);
      if (outcome instanceof ProviderOutcome.Succeeded s) {
        return finish(cmd, owned, redisClaim, RecordState.COMPLETED, 201, "succeeded", s.providerReference(), null);
      } else if (outcome instanceof ProviderOutcome.Declined d) {
        return finish(cmd, owned, redisClaim, RecordState.COMPLETED, 402, "declined", d.providerReference(), d.declineCode());
      } else if (outcome instanceof ProviderOutcome.Unknown u) {
        log.warn("provider outcome unknown for payment {}: {}; recovery will ask the provider", owned.paymentId(), u.reason());
        return finish(cmd, owned, redisClaim, RecordState.PENDING, 202, "pending", null, null);
      }
      return release(cmd, owned, redisClaim, (ProviderOutcome.NotAttempted) outcome, guard);
    });
  }

  private Future<PayOutcome> finish(PayCommand cmd, StoreClaim.Claimed owned, String redisClaim, RecordState state,
      int status, String paymentStatus, String providerReference, String declineCode) {
    String body = PaymentJson.render(owned.paymentId(), paymentStatus, cmd.request(), ledgerProvider, providerReference,
        declineCode, owned.createdAt());
    // The expiry the client is told is on this gateway's clock, taken before the completion is sent;
    // PostgreSQL counts the same TTL from its own now() in that statement, later (StoredResponse).
    Duration keyTtl = config.keyTtlFor(cmd.merchantId());
    // To the millisecond, as Redis keeps it: every replay tells the same moment.
    StoredResponse response = new StoredResponse(status, body, owned.paymentId(),
        clock.instant().plus(keyTtl).truncatedTo(ChronoUnit.MILLIS));
    Completion completion = state == RecordState.PENDING
        ? Completion.pending(response, keyTtl, ledgerProvider, firstInquiry)
        : new Completion(state, response, keyTtl, paymentStatus, ledgerProvider, providerReference, declineCode, null,
            // Written instead if the charge id is already another payment's (IdempotencyStore#COMPLETE).
            paymentStatus.equals("succeeded") && providerReference != null
                ? Completion.pending(pendingAnswer(cmd, owned, response.expiresAt()), keyTtl, ledgerProvider, firstInquiry)
                : null);
    return metrics.timeStore("complete", () -> store.complete(cmd.merchantId(), cmd.key(), owned.epoch(), completion))
        .compose(result -> {
          if (result == Completion.Result.FENCED) {
            log.warn("payment {} was taken over before it completed; its outcome goes over recovery's claim if the "
                + "record is still unsettled", owned.paymentId());
            return answerTakenOver(cmd, owned, completion, redisClaim);
          }
          Completion written = written(completion, result);
          return recorded(cmd, written, redisClaim).map(v -> fresh(written));
        })
        .recover(failure -> {
          if (!(failure instanceof StoreUnavailable)) {
            return Future.failedFuture(failure);
          }
          // The provider answered but the ledger did not take it. The claim stays PROCESSING; the
          // outcome is written again while the lease lasts, then recovery finalises it from the
          // provider. Until one of them lands the truth is "pending".
          log.error("payment {} provider outcome '{}' not recorded; it is written again while its lease lasts, then "
              + "recovery finalises it: {}", owned.paymentId(), paymentStatus, failure.getMessage());
          recordLater(cmd, owned, redisClaim, completion);
          // The outcome is written again from half a second on; until it lands a retry gets 409.
          return Future.succeededFuture(new PayOutcome.Fresh(pendingAnswer(cmd, owned, response.expiresAt()),
              PendingRetryAfter.SETTLING));
        });
  }

  /** The 202 of a payment whose outcome the ledger does not hold (yet): recovery settles it from the provider. */
  private StoredResponse pendingAnswer(PayCommand cmd, StoreClaim.Claimed owned, Instant expiresAt) {
    String body = PaymentJson.render(owned.paymentId(), "pending", cmd.request(), ledgerProvider, null, null,
        owned.createdAt());
    return new StoredResponse(202, body, owned.paymentId(), expiresAt);
  }

  /**
   * The answer of a payment whose record recovery took over before its completion landed (its lease
   * ran out before the provider answered). Only an answer the ledger holds is sent, since that is what
   * every retry gets: the provider's, once written over recovery's claim; else what the record holds
   * now ({@link #asRecordedNow}); and 202 pending when the write failed, as when PostgreSQL did not
   * take the first one: recovery settles the record, and later replays give its final answer.
   */
  private Future<PayOutcome> answerTakenOver(PayCommand cmd, StoreClaim.Claimed owned, Completion completion,
      String redisClaim) {
    StoredResponse pending = pendingAnswer(cmd, owned, completion.response().expiresAt());
    return completeTakenOver(cmd, completion, redisClaim)
        .compose(result -> result != Completion.Result.FENCED
            ? Future.succeededFuture(fresh(writtenAs(completion, result)))
            : asRecordedNow(cmd, owned, completion, pending))
        .otherwise(failure -> new PayOutcome.Fresh(pending, PendingRetryAfter.SETTLING));
  }

  /**
   * What the record holds for this payment after recovery settled it first: its stored answer (a
   * final one, possibly not what the provider told this request: an inquiry can disagree with it), or
   * {@code pending} while recovery still works on it. A key that no longer holds the payment was
   * released (recovery found no charge): the ledger says "not charged", so the provider's answer would
   * be replayed by no retry, and "not charged" would invite a new key and a second charge. Pending
   * sends the client back to the same key, whose retry goes out under the same provider key (the
   * provider answers it with the charge it made, and the ledger then holds it).
   */
  private Future<PayOutcome> asRecordedNow(PayCommand cmd, StoreClaim.Claimed owned, Completion completion,
      StoredResponse pending) {
    return store.recordOf(cmd.merchantId(), cmd.key(), owned.paymentId()).map(record -> {
      if (record instanceof StoreClaim.Completed done) {
        return new PayOutcome.Fresh(done.response());
      } else if (record instanceof StoreClaim.Pending unsettled) {
        return new PayOutcome.Fresh(unsettled.response(), pendingRetryAfter.untilAsked(unsettled.nextInquiryIn()));
      } else if (record == null && completion.state() == RecordState.COMPLETED) {
        log.error("payment {}: the provider answered '{}', but recovery had released its key (as never charged); "
            + "answering 202 pending so that the client retries with the key", owned.paymentId(), completion.paymentStatus());
      }
      // Recovery holds the record and is asking the provider now, or freed the key (a retry goes out
      // under the same provider key, and the provider answers it with its charge): a retry soon gets more.
      return (PayOutcome) new PayOutcome.Fresh(pending, PendingRetryAfter.SETTLING);
    }).onFailure(failure -> log.warn("payment {}: its record was not read after recovery took it over; answering 202 "
        + "pending: {}", owned.paymentId(), failure.getMessage()));
  }

  /**
   * Writes a final completion over recovery's claim of the record ({@link IdempotencyStore#completeTakenOver});
   * once it landed, the replay cache and Redis learn it. FENCED when recovery settled the record
   * first (completed or released it), and for a pending completion, which is not written: an unknown
   * outcome is recovery's to find. Fails when the store did; recovery settles the record then.
   */
  private Future<Completion.Result> completeTakenOver(PayCommand cmd, Completion completion, String redisClaim) {
    if (completion.state() != RecordState.COMPLETED) {
      return Future.succeededFuture(Completion.Result.FENCED);
    }
    String paymentId = completion.response().paymentId();
    return store.completeTakenOver(cmd.merchantId(), cmd.key(), completion).compose(result -> {
      if (result == Completion.Result.FENCED) {
        return Future.succeededFuture(result);
      }
      Completion written = written(completion, result);
      log.info("payment {} outcome '{}' written over recovery's claim", paymentId, written.paymentStatus());
      return recorded(cmd, written, redisClaim).map(result);
    }).onFailure(failure -> log.warn("payment {} outcome not written over recovery's claim; recovery settles it: {}",
        paymentId, failure.getMessage()));
  }

  /**
   * The completion as it was written: its pending alternative when the ledger already holds its
   * charge id as another payment's (counted here; the store logs it), else itself.
   */
  private Completion written(Completion completion, Completion.Result result) {
    if (result == Completion.Result.CHARGE_TAKEN) {
      metrics.providerReferenceReused();
    }
    return writtenAs(completion, result);
  }

  /** {@link #written}, not counted again. */
  private static Completion writtenAs(Completion completion, Completion.Result result) {
    return result == Completion.Result.CHARGE_TAKEN ? completion.ifChargeTaken() : completion;
  }

  /** This request's answer from the completion written: a pending one says when to poll (from its first inquiry). */
  private PayOutcome fresh(Completion written) {
    return new PayOutcome.Fresh(written.response(),
        written.state() == RecordState.PENDING ? pendingRetryAfter.untilAsked(written.nextInquiryIn()) : 0);
  }

  /** After a completion landed: the replay cache and Redis learn the answer (waiters are woken). */
  private Future<Void> recorded(PayCommand cmd, Completion completion, String redisClaim) {
    StoredResponse response = completion.response();
    if (completion.state() == RecordState.COMPLETED) {
      replays.remember(cmd.merchantId(), cmd.key(), cmd.bodyDigest(), response);
      return cached(redisClaim, () -> gate.complete(cmd.merchantId(), cmd.key(), cmd.fingerprint(), response, redisClaim));
    }
    return cached(redisClaim, () -> gate.markPending(cmd.merchantId(), cmd.key(), cmd.fingerprint(),
        config.keyTtlFor(cmd.merchantId()), redisClaim));
  }

  /**
   * Writes the key's answer or pending mark to Redis. The answer waits for it only when it replaces
   * this request's own claim there ({@code redisClaim}): left in place, that claim would answer the
   * client's next retry 409. Without one (the gate was skipped, or sent the request to PostgreSQL)
   * the write only fills the cache: it goes in the background, and not at all while the gate's
   * breaker is open, so that while Redis hangs a payment waits for no Redis deadline (before, each
   * waited one redis_timeout for this write though its claim had skipped Redis).
   */
  private Future<Void> cached(String redisClaim, Supplier<Future<Void>> write) {
    if (redisClaim != null) {
      return write.get();
    }
    if (!gate.skipping()) {
      write.get(); // best effort, never fails (RedisGate)
    }
    return Future.succeededFuture();
  }

  /**
   * Writes again, in the background, a completion PostgreSQL did not take, waiting twice as long
   * each time, for as long as the claim's lease lasts. A store that is back within seconds then
   * holds the provider's answer and retries replay it, instead of getting 409 until recovery takes
   * the record over after the lease. The write is fenced by the claim's epoch: once recovery owns
   * the record it is refused (FENCED), and this ends.
   *
   * @param redisClaim this request's claim in Redis, or null: freed when the write is fenced
   */
  private void recordLater(PayCommand cmd, StoreClaim.Claimed owned, String redisClaim, Completion completion) {
    retryWithinLease(owned.claimedAtNanos() + leaseNanos, FIRST_RECORD_RETRY_MS,
        () -> store.complete(cmd.merchantId(), cmd.key(), owned.epoch(), completion).compose(result -> {
          if (result == Completion.Result.FENCED) {
            // Recovery took the record over, or a try whose answer was lost had landed after all
            // (the first write timed out here but committed there). Either way the record is no
            // longer ours to write. This request's claim in Redis must go, though: left there, it
            // would answer retries 409 "in flight" until the lease ends, for a payment PostgreSQL
            // may already hold as completed. Without it, retries ask PostgreSQL, which knows.
            log.info("payment {} is no longer PROCESSING under its claim's epoch; its outcome is written only if "
                + "final and the record is not", owned.paymentId());
            return releaseRedis(cmd, redisClaim).compose(v -> completeTakenOver(cmd, completion, null)).otherwiseEmpty()
                .map(true);
          } else {
            Completion written = written(completion, result);
            log.info("payment {} outcome '{}' recorded on a later try", owned.paymentId(), written.paymentStatus());
            recorded(cmd, written, redisClaim);
            return Future.succeededFuture(true);
          }
        }),
        () -> log.warn("payment {} outcome still not recorded as its lease ends; recovery finalises it", owned.paymentId()));
  }

  private Future<PayOutcome> release(PayCommand cmd, StoreClaim.Claimed owned, String redisClaim,
      ProviderOutcome.NotAttempted notAttempted, ClaimGuard guard) {
    log.info("provider did not attempt payment {}: {}; releasing the key", owned.paymentId(), notAttempted.reason());
    return store.release(cmd.merchantId(), cmd.key(), owned.epoch(), owned.paymentId())
        .map(result -> result == Completion.Result.RECORDED)
        .otherwise(failure -> {
          log.warn("release of payment {} not recorded: {}", owned.paymentId(), failure.getMessage());
          return false;
        })
        .compose(released -> {
          if (!released) {
            // The claim stays PROCESSING (or recovery already took it over): recovery frees the key
            // once a late charge is impossible, and the answer says when instead of "the key is free".
            log.warn("payment {} was not charged but its key stays held until recovery releases it", owned.paymentId());
          }
          // The guard gives back what its check wrote before the Redis claim goes and waiters wake:
          // a retry of this key let in earlier would be judged against an anchor about to vanish,
          // be charged, and leave no anchor for the next twin to be refused against. Waiters wake
          // either way: a free key one of them may claim; one held until recovery frees it (longer
          // than any wait) gets them the 409 a retry gets, at once instead of at the end of the wait.
          Future<Void> redis = guard.notCharged(cmd).otherwiseEmpty().compose(v -> redisClaim == null
              ? gate.forget(cmd.merchantId(), cmd.key()) : releaseRedis(cmd, redisClaim));
          return redis.compose(v -> gate.wakeWaiters(cmd.merchantId(), cmd.key()))
              .map(v -> new PayOutcome.ProviderUnavailable(released,
                  released ? notAttempted.retryAfterSeconds()
                      : Math.max(heldKeyRetryAfterSeconds, notAttempted.retryAfterSeconds())));
        });
  }

  private Future<Void> releaseRedis(PayCommand cmd, String redisClaim) {
    return redisClaim == null ? Future.succeededFuture() : gate.release(cmd.merchantId(), cmd.key(), redisClaim);
  }

  /**
   * Frees this request's Redis claim and wakes the twins that found it in flight, in one round trip:
   * for a request that ends with nothing stored (503, 422), whose twins would otherwise wait until
   * their {@code Prefer: wait} runs out. Without a Redis claim no twin waits on this request.
   */
  private Future<Void> releaseAndWake(PayCommand cmd, String redisClaim) {
    return redisClaim == null ? Future.succeededFuture() : gate.releaseAndWake(cmd.merchantId(), cmd.key(), redisClaim);
  }

  /** The payload's fingerprint, over the body as sent, the one claims are stored under. */
  public static String fingerprint(JsonObject body) {
    return Fingerprint.of(OPERATION, body);
  }

  /**
   * The fingerprint of the body without its top-level members sent as {@code null}; null when it
   * has none (the two are then one). Nulls inside {@code metadata} are the merchant's data and count.
   */
  static String fingerprintWithoutNulls(JsonObject body) {
    return body.getMap().containsValue(null) ? Fingerprint.of(OPERATION, withoutNullMembers(body)) : null;
  }

  private static JsonObject withoutNullMembers(JsonObject body) {
    JsonObject meant = new JsonObject();
    body.getMap().forEach((name, value) -> {
      if (value != null) {
        meant.put(name, value);
      }
    });
    return meant;
  }
}
