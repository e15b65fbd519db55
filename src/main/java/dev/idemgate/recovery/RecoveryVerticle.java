package dev.idemgate.recovery;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.idempotency.Completion;
import dev.idemgate.idempotency.IdempotencyStore;
import dev.idemgate.idempotency.RecordState;
import dev.idemgate.idempotency.RedisGate;
import dev.idemgate.idempotency.StoreUnavailable;
import dev.idemgate.idempotency.StoredResponse;
import dev.idemgate.observability.GatewayMetrics;
import dev.idemgate.observability.ThrottledWarning;
import dev.idemgate.payment.PaymentJson;
import dev.idemgate.provider.ProviderClient;
import dev.idemgate.provider.ProviderOutcome;
import dev.idemgate.storage.PipelinedRedis;
import dev.idemgate.storage.Postgres;
import dev.idemgate.storage.RedisClients;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.json.JsonObject;
import io.vertx.redis.client.Redis;
import io.vertx.sqlclient.Pool;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finishes what the request path could not (DESIGN §1): PROCESSING records whose lease expired
 * (their instance died or stalled) and PENDING records (the provider's answer was lost). It asks the
 * provider by provider key and either completes the record with the real outcome or, when the
 * provider never saw the charge and enough time has passed for a late one to arrive, releases it
 * (but never once the record is older than the provider is known to remember keys).
 * It never charges. Runs on every instance; PostgreSQL coordinates them (see {@link RecoveryStore}).
 * A record's age (may a late charge still land? does the acquirer still remember it?) is read on
 * PostgreSQL's clock, which stamped the claim ({@link DueRecord}): on this instance's, a clock ahead
 * of PostgreSQL's (or of the claiming instance's) would release a payment whose charge may still land.
 * Also purges expired keys in small batches ({@link RetentionPurge}).
 */
public final class RecoveryVerticle extends VerticleBase {
  /**
   * Event bus address answering the unresolved records for {@code /admin/pending}: a JsonObject with
   * {@code limit} and, to narrow the list, {@code merchant_id} and {@code payment_id}, already checked;
   * answered {@code {"unresolved": [...], "more": boolean}}.
   */
  public static final String UNRESOLVED = "idemgate.recovery.unresolved";
  /**
   * Event bus address settling one pending payment by an operator's verdict (for
   * {@code POST /admin/pending/{id}/resolve}): a JsonObject with {@code payment_id}, {@code outcome}
   * ({@code succeeded}, {@code declined} or {@code not_charged}) and, for the first two,
   * {@code provider_reference} and {@code decline_code}, already checked, and optionally
   * {@link #WITHOUT_ACQUIRER}. Fails with 404, 409, 502 or 503, each with the text for the operator.
   */
  public static final String RESOLVE = "idemgate.recovery.resolve";
  /** The 503 text of an admin request that failed before it could have written anything. */
  public static final String STORE_UNAVAILABLE = "the payment store is unavailable; retry later";

  /**
   * The verdict's member by which an operator settles, on their own records, a payment older than
   * {@code provider_key_retention} that the acquirer gives no answer about at all (gone, or its
   * inquiries always fail). Without it such a verdict gets 502 and changes nothing.
   */
  public static final String WITHOUT_ACQUIRER = "without_acquirer";

  private static final Logger log = LoggerFactory.getLogger(RecoveryVerticle.class);

  /**
   * A payment recovery could not settle (PostgreSQL or Redis gone in the middle of a pass): every
   * payment of the pass fails alike, so at most one WARN a second; the rest at DEBUG, and the
   * {@code failed} action counts every one.
   */
  private final ThrottledWarning paymentFailed = new ThrottledWarning(log);
  /**
   * A payment older than {@code provider_key_retention} that the acquirer cannot explain: asked about
   * again at every inquiry, for good, until an operator settles it, so many of them wrote a WARN
   * each at every pass. At most one a second; the {@code unverifiable} action and the pending gauge
   * count them, and {@code /admin/pending} lists them.
   */
  private final ThrottledWarning beyondRetention = new ThrottledWarning(log);

  /** What recovery did with one record; the tag of {@code idemgate.recovery.actions}. */
  enum Action {
    COMPLETED, RELEASED, STILL_PENDING, UNVERIFIABLE, FENCED, FAILED, OPERATOR_COMPLETED, OPERATOR_RELEASED,
    /** Still pending: the acquirer answered a charge id the ledger holds as another payment's (IdempotencyStore#COMPLETE). */
    CHARGE_TAKEN
  }

  private final GatewayConfig config;
  private final MeterRegistry registry;
  private final AtomicLong pendingGauge = new AtomicLong();
  private final AtomicLong expiredLeaseGauge = new AtomicLong();
  private Counter chargeTaken;
  private Pool pool;
  private Redis redis;
  private PipelinedRedis pipeline;
  private RecoveryStore recovery;
  private IdempotencyStore store;
  private RedisGate gate;
  private ProviderClient provider;
  private RetentionPurge purge;
  private long timerId = -1;
  private boolean sweeping;
  /**
   * Until when ({@link System#nanoTime()}) the acquirer asked, by a {@code Retry-After} on an
   * inquiry it refused (429 or 503), not to be asked again: passes until then send no inquiry
   * ({@link #sweep}). Per instance, as the breaker is; event-loop confined.
   */
  private long inquiriesWaitUntil = System.nanoTime();
  /**
   * Set by {@link #stop}: a pass still under way then fails as its pool and clients close under it.
   * That is the stop, not a fault, and is not worth a WARN on every clean shutdown; the records the
   * pass held are taken again after their hold by whichever instance runs next.
   */
  private boolean stopping;
  /**
   * This instance's wall clock, for the key expiry given with a completed payment (as the request
   * path's, see {@code StoredResponse}); recovery's verdicts never read it. A test gives one that
   * disagrees with PostgreSQL's.
   */
  private final Clock clock;

  public RecoveryVerticle(GatewayConfig config, MeterRegistry registry) {
    this(config, registry, Clock.systemUTC());
  }

  public RecoveryVerticle(GatewayConfig config, MeterRegistry registry, Clock clock) {
    this.config = config;
    this.registry = registry;
    this.clock = clock;
  }

  @Override
  public Future<?> start() {
    pool = Postgres.pool(vertx, config, 2, "recovery");
    redis = Redis.createClient(vertx, RedisClients.pipelineOptions(config, "recovery"));
    recovery = new RecoveryStore(pool, config.storeTimeout(), config.recoveredProviderIds(), config.providerKeyRetention(),
        config.ledgerProviders());
    store = new IdempotencyStore(pool, context, 2, config.storeTimeout(), config.lease(), config.providerId(),
        config.ledgerProviders(), IdempotencyStore.GroupSizes.NONE);
    pipeline = RedisClients.pipeline(redis, context, config);
    gate = new RedisGate(pipeline, config.redisTimeout(), config.lease(), RedisGate.breaker(vertx));
    provider = new ProviderClient(vertx.eventBus(), config);
    // Every action's series from 0, so that an alert on the increase of one sees its first count.
    for (Action action : Action.values()) {
      counter(action);
    }
    chargeTaken = GatewayMetrics.providerReferenceReused(registry, "recovery");
    Gauge.builder("idemgate.recovery.pending", pendingGauge, AtomicLong::get)
        .description("records whose provider outcome is still unknown").register(registry);
    Gauge.builder("idemgate.recovery.expired.leases", expiredLeaseGauge, AtomicLong::get)
        .description("in-flight records past their lease, waiting for recovery").register(registry);
    // Half the interval, so that a pass with a backlog to purge still ends before the next is due.
    purge = new RetentionPurge(recovery, config.retentionBatch(), config.recoveryInterval().dividedBy(2), registry);
    timerId = vertx.setPeriodic(config.recoveryInterval().toMillis(), id -> sweep());
    MessageConsumer<JsonObject> admin = vertx.eventBus().consumer(UNRESOLVED,
        message -> recovery.unresolved(message.body().getInteger("limit"), message.body().getString("merchant_id"),
                message.body().getString("payment_id"))
            .onSuccess(message::reply)
            .onFailure(failure -> message.fail(503, "store unavailable")));
    MessageConsumer<JsonObject> operator = vertx.eventBus().consumer(RESOLVE, this::resolveByOperator);
    return Future.join(admin.completion(), operator.completion());
  }

  /**
   * How long settling one operator's verdict may take: the take, the inquiry (the provider's
   * deadline and the event bus's margin), the charge id's lock, its check, the write and the Redis
   * record. The record is held that long, so that no recovery pass takes it back meanwhile, and the
   * management port waits a little longer for the answer ({@link #operatorAnswerWithin}).
   */
  static Duration operatorSettleBudget(GatewayConfig config) {
    return config.providerTimeout().plusSeconds(2).plus(config.storeTimeout().multipliedBy(4))
        .plus(config.redisTimeout().multipliedBy(2)).plusSeconds(3);
  }

  /** How long the management port waits for a verdict's answer; past it the outcome is unknown. */
  public static Duration operatorAnswerWithin(GatewayConfig config) {
    return operatorSettleBudget(config).plusSeconds(5);
  }

  /**
   * An operator's verdict on a pending payment, from the acquirer's own records. Only for a payment
   * claimed longer ago than a late charge can land. It takes the record over like a recovery pass
   * (fencing out one in flight, whose answer is then lost), asks the acquirer once more and settles
   * it ({@link #settle}).
   */
  private void resolveByOperator(Message<JsonObject> message) {
    JsonObject verdict = message.body();
    String paymentId = verdict.getString("payment_id");
    String outcome = verdict.getString("outcome");
    recovery.takePending(paymentId, config.lateChargeWindow(), operatorSettleBudget(config),
            config.takeoverGrace()).compose(r -> r != null
            ? provider.inquire(r.inquiry()).compose(answer -> {
              acquirerAsksToWait(answer);
              return settle(r, outcome, verdict, answer);
            })
                // Not settled: recovery may ask about it again at once, not after the verdict's budget.
                .recover(failure -> recovery.handBack(r).transform(ignored -> Future.failedFuture(failure)))
            : recovery.pendingSince(paymentId, config.takeoverGrace()).compose(unsettled -> Future.failedFuture(notTaken(unsettled))))
        .onSuccess(message::reply)
        .onFailure(failure -> {
          if (failure instanceof ReplyException known) {
            // The management port's access line has the status only; this records which verdict on
            // which payment was refused, and why.
            log.info("an operator's verdict {} on payment {} was refused ({}): {}", outcome, paymentId, known.failureCode(),
                known.getMessage());
            message.fail(known.failureCode(), known.getMessage());
          } else if (failure instanceof StoreUnavailable unavailable && mayHaveLanded(unavailable)) {
            // PostgreSQL ends a statement only a second after the gateway stops waiting for it, and a
            // COMMIT whose connection was lost may have committed: the write may have landed, the key
            // freed or the payment settled. "Retry later" would send the operator to a 404 for a
            // verdict that was applied.
            log.warn("an operator's verdict {} on payment {} may or may not have been recorded: {}", outcome, paymentId,
                failure.toString());
            message.fail(503, "PostgreSQL did not confirm the verdict's write in time: the verdict may or may not have "
                + "been recorded; look at /admin/pending (or GET the payment) before sending it again");
          } else {
            log.warn("an operator's verdict on payment {} failed: {}", paymentId, failure.toString());
            message.fail(503, STORE_UNAVAILABLE);
          }
        });
  }

  /**
   * Whether a failed write of a verdict (a completion or a release, or the COMMIT of a verdict written
   * under its charge id's lock) may still commit, or have committed: it was sent.
   */
  private static boolean mayHaveLanded(StoreUnavailable failure) {
    return List.of("complete", "release", "commit").contains(failure.operation()) && failure.reachedDatabase();
  }

  /** A verdict's refusal: the management port answers its status with the message. */
  private static ReplyException refusal(int status, String message) {
    return new ReplyException(ReplyFailure.RECIPIENT_FAILURE, status, message);
  }

  /** Why a verdict did not take the record: there is none (404), or not yet (409, saying until when). */
  private ReplyException notTaken(RecoveryStore.Unsettled unsettled) {
    if (unsettled == null) {
      return refusal(404, "no unsettled payment with this id for this provider");
    }
    Instant lateChargeEnds = unsettled.claimedAt().plus(config.lateChargeWindow());
    if (lateChargeEnds.isAfter(unsettled.now())) {
      return refusal(409, "a charge sent for this payment could still "
          + "reach the acquirer until " + lateChargeEnds + "; nothing was changed");
    }
    return refusal(409, "the payment is still being worked on (its claim's "
        + "lease, or a recovery pass holding it, ends " + (unsettled.takeableFrom() == null ? "soon"
        : "before " + unsettled.takeableFrom()) + "); nothing was changed: look at /admin/pending again then");
  }

  /**
   * Settles a record an operator's verdict took. The acquirer's answer comes first: a charge it
   * reports is recorded whatever the verdict said. While the payment is younger than
   * {@code provider_key_retention} the acquirer still remembers it, so only its answer settles it:
   * the verdict is applied when it agrees ("never seen" for {@code not_charged}), and nothing is
   * written when the acquirer contradicts it or its answer does not settle it. Past that, the verdict
   * decides, once the acquirer answered at all, and {@code not_charged} only if it does not report
   * having the request ({@link ProviderOutcome.Heard}); with no answer at all, only when the operator
   * said {@link #WITHOUT_ACQUIRER}. At any age, when the acquirer answers with a final charge of
   * another amount or currency ({@link ProviderOutcome.Heard#OTHER_CHARGE}, a partial approval), only
   * {@code declined} is applied: the operator closes the payment (having reversed that charge) without
   * waiting out {@code provider_key_retention}, and the key stays taken, so that no retry goes to an
   * acquirer holding a charge under it. A charge id is one succeeded payment's only.
   */
  private Future<JsonObject> settle(DueRecord r, String outcome, JsonObject verdict, ProviderOutcome answer) {
    boolean acquirerRemembers = config.providerRemembers(r.createdAt(), r.storeNowAtMost());
    boolean withoutAcquirer = verdict.getBoolean(WITHOUT_ACQUIRER, false);
    boolean answered = !(answer instanceof ProviderOutcome.Unknown unknown && unknown.heard() == ProviderOutcome.Heard.NO_ANSWER);
    Future<Action> done;
    String settledAs;
    if (answer instanceof ProviderOutcome.Succeeded s) {
      settledAs = "succeeded";
      done = complete(r, 201, settledAs, s.providerReference(), null);
    } else if (answer instanceof ProviderOutcome.Declined d) {
      settledAs = "declined";
      done = complete(r, 402, settledAs, d.providerReference(), d.declineCode());
    } else if (answer instanceof ProviderOutcome.Unknown unknown && unknown.heard() == ProviderOutcome.Heard.NO_ANSWER
        && !(withoutAcquirer && !acquirerRemembers)) {
      // No answer at all, so a charge the acquirer still remembers could not have been found.
      return Future.failedFuture(refusal(502, "the acquirer gave no answer ("
          + unknown.reason() + "), so a charge it made could not be looked for; nothing was changed: send the verdict "
          + "again once it answers" + (acquirerRemembers
              ? "; \"" + WITHOUT_ACQUIRER + "\": true is taken only once the payment is older than provider_key_retention, from "
                  + r.createdAt().plus(config.providerKeyRetention())
              : ", or, if it cannot answer at all, with \"" + WITHOUT_ACQUIRER + "\": true from its own records")));
    } else if (answer instanceof ProviderOutcome.Unknown unknown && unknown.heard() == ProviderOutcome.Heard.OTHER_CHARGE
        && !outcome.equals("declined")) {
      // At any age: the acquirer plainly still remembers the key, since it answers with its charge.
      return Future.failedFuture(refusal(409, "the acquirer holds a charge of another amount or currency under this "
          + "payment's key (" + unknown.reason() + "; a partial approval, or an earlier charge): it is not this payment as "
          + "asked, so succeeded is refused (it would record the amount asked as charged), and so is not_charged (it would "
          + "free a key the acquirer holds a charge under); reverse that charge at the acquirer, then settle the payment as "
          + "declined, with a decline_code that says why; nothing was changed"));
    } else if (acquirerRemembers && answer instanceof ProviderOutcome.Unknown unknown
        && unknown.heard() != ProviderOutcome.Heard.OTHER_CHARGE) {
      return Future.failedFuture(refusal(409, "the acquirer's answer does "
          + "not settle it yet (" + unknown.reason() + "); until the payment is older than provider_key_retention only "
          + "its answer settles it; nothing was changed"));
    } else if (answer instanceof ProviderOutcome.Unknown unknown && unknown.heard() == ProviderOutcome.Heard.HAS_IT
        && outcome.equals("not_charged")) {
      return Future.failedFuture(refusal(409, "the acquirer has this "
          + "payment's request or charge (" + unknown.reason() + "), so it may be charged: not_charged is refused; "
          + "settle it as succeeded or declined from the acquirer's records; nothing was changed"));
    } else if (acquirerRemembers && answer instanceof ProviderOutcome.NotAttempted && !outcome.equals("not_charged")) {
      return Future.failedFuture(refusal(409, "the acquirer says it never "
          + "saw this payment; nothing was changed (recovery frees its key by itself)"));
    } else if (outcome.equals("not_charged")) {
      settledAs = outcome;
      done = release(r, ReleaseReason.OPERATOR_NOT_CHARGED);
    } else {
      settledAs = outcome;
      boolean succeeded = outcome.equals("succeeded");
      String reference = verdict.getString("provider_reference");
      Completion completion = completion(r, succeeded ? 201 : 402, outcome, reference,
          succeeded ? null : verdict.getString("decline_code", "declined"));
      // One charge is one payment: a charge id already a succeeded payment's in the ledger is a typo
      // or the wrong payment (a declined one's is not: RecoveryStore#CHARGED_AS). Checked and
      // written under the charge id's lock, so that two verdicts at once naming it for two payments
      // cannot both find it unused.
      done = reference == null ? complete(r, completion) : recovery.underChargeLock(reference,
              connection -> recovery.paymentCharged(connection, reference, r.paymentId()).compose(other -> other == null
                  ? store.completeOn(connection, r.merchantId(), r.key(), r.epoch(), completion)
                  : Future.failedFuture(refusal(409, "the charge " + reference
                      + " is already the charge of payment " + other + "; nothing was changed"))))
          .compose(result -> completed(r, completion, result));
    }
    return done.compose(action -> {
      if (action == Action.FENCED) {
        return Future.failedFuture(refusal(409,
            "the payment changed while it was being settled; look at /admin/pending again"));
      } else if (action == Action.CHARGE_TAKEN) {
        count(action);
        // The acquirer's own answer (a verdict's charge id was checked under its lock before).
        String charge = answer instanceof ProviderOutcome.Succeeded s ? s.providerReference()
            : verdict.getString("provider_reference");
        return Future.failedFuture(refusal(409, "the acquirer answers charge " + charge + " for this payment, which is "
            + "already the charge of another payment: it stays pending; nothing was settled"));
      }
      count(action == Action.RELEASED ? Action.OPERATOR_RELEASED : Action.OPERATOR_COMPLETED);
      // Also when the acquirer's charge id replaced the one the operator gave.
      String givenReference = verdict.getString("provider_reference");
      boolean overridden = !settledAs.equals(outcome)
          || answer instanceof ProviderOutcome.Succeeded s && givenReference != null && !givenReference.equals(s.providerReference())
          || answer instanceof ProviderOutcome.Declined d && givenReference != null && !givenReference.equals(d.providerReference());
      if (!answered) {
        log.warn("an operator settled payment {} as {} without the acquirer's answer (it gave none), on the "
            + "operator's own records", r.paymentId(), outcome);
      } else if (answer instanceof ProviderOutcome.Unknown unknown && unknown.heard() == ProviderOutcome.Heard.OTHER_CHARGE) {
        log.warn("an operator settled payment {} as declined while the acquirer holds a charge of another amount or "
            + "currency under its key: reversing that charge is the operator's", r.paymentId());
      } else if (overridden) {
        log.warn("an operator settled payment {} as {}, but the acquirer answered otherwise when asked: recorded as "
            + "the acquirer answered, {}", r.paymentId(), outcome, settledAs);
      } else {
        log.info("an operator settled payment {} as {}", r.paymentId(), outcome);
      }
      return Future.succeededFuture(new JsonObject().put("payment_id", r.paymentId())
          .put("provider_key", r.providerKey()).put("resolved_as", settledAs)
          .put("verdict_overridden", overridden).put("acquirer_answered", answered));
    });
  }

  @Override
  public Future<?> stop() {
    stopping = true;
    vertx.cancelTimer(timerId);
    return Future.join(pipeline.close(), pool.close(), redis.close());
  }

  /**
   * One pass; passes never overlap on one instance, and a failed pass is simply tried again next time.
   * While the acquirer's Retry-After on an inquiry runs ({@link #acquirerAsksToWait}) a pass sends no
   * inquiry, so that no other payment's inquiry goes to an acquirer that asked to wait (a pass sends
   * its inquiries all at once, so those of the pass that heard it went already, and each got its own
   * answer). Nothing is charged by recovery, so waiting only delays settling; the pending records
   * stay due and the first pass after takes them. A dead pod's claims are still taken over, at their
   * usual moment, and made pending without an inquiry ({@link #pendUntilTheWaitEnds}): their retries'
   * 409 told them to come back by then ({@code InFlightRetryAfter}), and 409s for up to the 300 s
   * such a wait may last would send a client with a small retry budget off to pay again under a new
   * key. The purge and the gauges run as ever.
   */
  Future<Void> sweep() {
    if (sweeping) {
      return Future.succeededFuture();
    }
    sweeping = true;
    Duration waitLeft = Duration.ofNanos(Math.max(0, inquiriesWaitUntil - System.nanoTime()));
    Future<Void> taken = waitLeft.isZero()
        ? recovery.takeDue(config.recoveryBatch(), config.takeoverGrace(), config.inquiryHold())
            .compose(due -> Future.join(due.stream().map(this::resolve).toList()).<Void>mapEmpty())
        : recovery.takeExpiredClaims(config.recoveryBatch(), config.takeoverGrace(), config.inquiryHold())
            .compose(due -> Future.join(due.stream().map(r -> pendUntilTheWaitEnds(r, waitLeft)).toList()).<Void>mapEmpty());
    return taken
        .compose(v -> purge.run())
        .compose(v -> recovery.unresolvedCounts())
        .onSuccess(counts -> {
          pendingGauge.set(counts[0]);
          expiredLeaseGauge.set(counts[1]);
        })
        .<Void>mapEmpty()
        .onFailure(failure -> {
          if (stopping) {
            log.debug("recovery pass cut short by the stop: {}", failure.getMessage());
          } else {
            log.warn("recovery pass failed; it runs again in {}: {}", config.recoveryInterval(), failure.getMessage());
          }
        })
        .eventually(() -> {
          sweeping = false;
          return Future.succeededFuture();
        });
  }

  private Future<Void> resolve(DueRecord r) {
    return provider.inquire(r.inquiry())
        .compose(outcome -> {
          if (outcome instanceof ProviderOutcome.Succeeded s) {
            return complete(r, 201, "succeeded", s.providerReference(), null);
          } else if (outcome instanceof ProviderOutcome.Declined d) {
            return complete(r, 402, "declined", d.providerReference(), d.declineCode());
          }
          Duration asked = acquirerAsksToWait(outcome);
          boolean neverSeen = outcome instanceof ProviderOutcome.NotAttempted;
          if (!config.providerRemembers(r.createdAt(), r.storeNowAtMost())) {
            // Past what the acquirer is known to remember, neither its "never seen" (it may have
            // forgotten) nor its silence will ever settle this payment, and freeing the key would
            // let a retry charge again: it stays pending, still asked about (a charge found later
            // completes it), and an operator decides (POST /admin/pending/{id}/resolve).
            beyondRetention.warn("payment {} was claimed more than provider_key_retention ({}) ago and the acquirer {}: "
                + "it stays pending until an operator settles it (docs/operations.md)", r.paymentId(), config.providerKeyRetention(),
                neverSeen ? "says it never saw it, which may mean it forgot it" : "cannot tell its outcome");
            return keepPending(r, null, asked).map(action -> action == Action.FENCED ? action : Action.UNVERIFIABLE);
          }
          if (neverSeen) {
            if (lateChargeImpossible(r)) {
              return release(r, ReleaseReason.PROVIDER_NEVER_SAW_IT);
            }
            // Not seen yet, and a late charge may still land: ask again on the backoff schedule,
            // but no later than the moment it no longer can. The next step of the backoff may be
            // much later (30 s, 2 m), past the Retry-After a 502 gave for this held key. Counted
            // from the take; PostgreSQL counts it from its now() when it writes it, later, so the
            // next look comes once the window has ended on its clock.
            return keepPending(r, Duration.between(r.takenAt(), lateChargeEnds(r)));
          }
          // The inquiry failed: keep asking on the backoff schedule, but not before the acquirer asked.
          return keepPending(r, null, asked);
        })
        .recover(failure -> {
          logFailure(r, failure);
          // Put it on the backoff schedule all the same (a PROCESSING record becomes PENDING, so
          // retries get 202, not 409): a write that fails on this record's data would otherwise
          // fail again at every takeover, 15-26 s apart, for ever. During an outage this write
          // fails too, and the record is simply taken again.
          return keepPending(r, null).otherwise(Action.FAILED).map(Action.FAILED);
        })
        .map(action -> {
          count(action);
          return null;
        });
  }

  /** A record's recovery that failed: a throttled WARN, or a DEBUG line when the stop cut it short. */
  private void logFailure(DueRecord r, Throwable failure) {
    if (stopping) {
      log.debug("recovery of payment {} cut short by the stop: {}", r.paymentId(), failure.getMessage());
    } else {
      paymentFailed.warn("recovery of payment {} failed: {}", r.paymentId(), failure.getMessage());
    }
  }

  /**
   * A dead pod's claim taken over while the acquirer asked to wait: pending at once, as when the
   * acquirer cannot tell, its first inquiry no sooner than the wait's end ({@code waitLeft}, read
   * at the pass's start); its retries get 202 with that {@code Retry-After}. Past the lease and the
   * takeover grace the claim's charge was sent or never will be, so a pending record is as safe as
   * after an inquiry that failed.
   */
  private Future<Void> pendUntilTheWaitEnds(DueRecord r, Duration waitLeft) {
    return keepPending(r, null, waitLeft)
        .recover(failure -> {
          logFailure(r, failure);
          // Taken again after the hold, as a pass's failed write is.
          return Future.succeededFuture(Action.FAILED);
        })
        .map(action -> {
          count(action);
          return null;
        });
  }

  /**
   * How long the acquirer asked not to be asked again, by a {@code Retry-After} on an inquiry it
   * refused ({@link ProviderOutcome.Unknown#retryAfterSeconds()}, read and bounded as on a charge:
   * at most 300 s); zero when it said nothing. Also makes this instance's passes send no inquiry
   * for that long ({@link #sweep}).
   */
  private Duration acquirerAsksToWait(ProviderOutcome outcome) {
    if (!(outcome instanceof ProviderOutcome.Unknown unknown) || unknown.retryAfterSeconds() <= 0) {
      return Duration.ZERO;
    }
    Duration asked = Duration.ofSeconds(unknown.retryAfterSeconds());
    long until = System.nanoTime() + asked.toNanos();
    if (until - inquiriesWaitUntil > 0) {
      if (System.nanoTime() - inquiriesWaitUntil >= 0) {
        log.info("the acquirer refused an inquiry ({}) and asked to wait {} s: recovery on this instance asks it "
            + "about no payment until then", unknown.reason(), unknown.retryAfterSeconds());
      }
      inquiriesWaitUntil = until;
    }
    return asked;
  }

  /**
   * Past {@link GatewayConfig#lateChargeWindow()}, a provider that has not seen the charge never will.
   * Read at the take, before the inquiry was sent, so the provider's "never seen" came after.
   */
  private boolean lateChargeImpossible(DueRecord r) {
    return lateChargeEnds(r).isBefore(r.takenAt());
  }

  private Instant lateChargeEnds(DueRecord r) {
    return r.createdAt().plus(config.lateChargeWindow());
  }

  private Future<Action> complete(DueRecord r, int status, String paymentStatus, String reference, String declineCode) {
    return complete(r, completion(r, status, paymentStatus, reference, declineCode));
  }

  private Future<Action> complete(DueRecord r, Completion completion) {
    return store.complete(r.merchantId(), r.key(), r.epoch(), completion).compose(result -> completed(r, completion, result));
  }

  private Completion completion(DueRecord r, int status, String paymentStatus, String reference, String declineCode) {
    StoredResponse response = response(r, status, paymentStatus, reference, declineCode);
    Duration keyTtl = config.keyTtlFor(r.merchantId());
    // Written instead if the charge id is already another payment's (IdempotencyStore#COMPLETE):
    // pending, asked about again on the schedule, as when the acquirer cannot tell.
    Completion ifChargeTaken = paymentStatus.equals("succeeded") && reference != null
        ? Completion.pending(response(r, 202, "pending", null, null, response.expiresAt()), keyTtl, config.ledgerProvider(),
            nextInquiry(r, null))
        : null;
    return new Completion(RecordState.COMPLETED, response, keyTtl, paymentStatus, config.ledgerProvider(), reference,
        declineCode, null, ifChargeTaken);
  }

  /** After the completion's write committed: Redis learns the answer, unless the write was fenced. */
  private Future<Action> completed(DueRecord r, Completion completion, Completion.Result result) {
    if (result == Completion.Result.FENCED) {
      return Future.succeededFuture(Action.FENCED);
    } else if (result == Completion.Result.CHARGE_TAKEN) {
      // Written as pending (the store logs it): retries keep getting 202.
      chargeTaken.increment();
      return gate.markPending(r.merchantId(), r.key(), r.fingerprint(), config.keyTtlFor(r.merchantId()), null)
          .map(v -> Action.CHARGE_TAKEN);
    }
    log.info("recovery completed payment {} as {}", r.paymentId(), completion.paymentStatus());
    return gate.complete(r.merchantId(), r.key(), r.fingerprint(), completion.response(), null).map(v -> Action.COMPLETED);
  }

  private Future<Action> release(DueRecord r, ReleaseReason reason) {
    return recovery.releaseUnseen(r, reason).compose(released -> {
      if (!released) {
        return Future.succeededFuture(Action.FENCED);
      }
      log.info("recovery released payment {}: {}", r.paymentId(), reason.description());
      return gate.forget(r.merchantId(), r.key()).compose(v -> gate.wakeWaiters(r.merchantId(), r.key())).map(v -> Action.RELEASED);
    });
  }

  /**
   * How long from now until the last look that is answered while the acquirer still remembers the
   * payment ({@code provider_key_retention} from the claim, less a pass's wait and an inquiry's hold),
   * or null once that moment has passed. Without it the backoff's long steps (1 h by default) jumped
   * past the end of that memory: an acquirer back from an outage in time was never asked while its
   * "never seen" still counted, and a payment it never saw waited for an operator.
   */
  private Duration untilLastLookWhileRemembered(DueRecord r) {
    Instant lastLook = r.createdAt().plus(config.providerKeyRetention()).minus(config.recoveryInterval()).minus(config.inquiryHold());
    Duration left = Duration.between(r.storeNowAtMost(), lastLook);
    return left.isNegative() || left.isZero() ? null : left;
  }

  /** @param atMost the longest wait before the next inquiry, or null for the backoff's */
  private Future<Action> keepPending(DueRecord r, Duration atMost) {
    return keepPending(r, atMost, Duration.ZERO);
  }

  /**
   * @param atMost the longest wait before the next inquiry, or null for the backoff's
   * @param atLeast the acquirer's Retry-After ({@link #acquirerAsksToWait}): the next inquiry comes no
   *     sooner, whatever the backoff or {@code atMost} say (asked sooner, it would refuse again)
   */
  private Future<Action> keepPending(DueRecord r, Duration atMost, Duration atLeast) {
    Duration next = later(nextInquiry(r, atMost), atLeast);
    if (r.state() == RecordState.PENDING) {
      return recovery.reschedule(r, next).map(kept -> kept ? Action.STILL_PENDING : Action.FENCED);
    }
    // An expired PROCESSING record whose outcome is unknown becomes PENDING: retries now get 202,
    // not an endless 409, and the inquiries follow the backoff schedule.
    StoredResponse response = response(r, 202, "pending", null, null);
    Completion completion = Completion.pending(response, config.keyTtlFor(r.merchantId()), config.ledgerProvider(), next);
    return store.complete(r.merchantId(), r.key(), r.epoch(), completion).compose(result -> result == Completion.Result.FENCED
        ? Future.succeededFuture(Action.FENCED)
        : gate.markPending(r.merchantId(), r.key(), r.fingerprint(), config.keyTtlFor(r.merchantId()), null).map(v -> Action.STILL_PENDING));
  }

  /** @param atMost the longest wait before the next inquiry, or null for the backoff's */
  private Duration nextInquiry(DueRecord r, Duration atMost) {
    return earlier(earlier(config.nextInquiryAfter(r.inquiryAttempts()), atMost), untilLastLookWhileRemembered(r));
  }

  /** The longer of two waits. */
  private static Duration later(Duration wait, Duration floor) {
    return floor.compareTo(wait) > 0 ? floor : wait;
  }

  /** The shorter of two waits; {@code cap} null is none. */
  private static Duration earlier(Duration wait, Duration cap) {
    return cap != null && cap.compareTo(wait) < 0 ? cap : wait;
  }

  private StoredResponse response(DueRecord r, int status, String paymentStatus, String reference, String declineCode) {
    return response(r, status, paymentStatus, reference, declineCode,
        clock.instant().plus(config.keyTtlFor(r.merchantId())).truncatedTo(ChronoUnit.MILLIS));
  }

  private StoredResponse response(DueRecord r, int status, String paymentStatus, String reference, String declineCode,
      Instant expiresAt) {
    String body = PaymentJson.render(r.paymentId(), paymentStatus, r.amount(), r.currency(), r.merchantReference(),
        config.ledgerProvider(), reference, declineCode, r.createdAt());
    return new StoredResponse(status, body, r.paymentId(), expiresAt);
  }

  private void count(Action action) {
    counter(action).increment();
  }

  private Counter counter(Action action) {
    return Counter.builder("idemgate.recovery.actions").tag("action", action.name().toLowerCase(Locale.ROOT))
        .description("what recovery did with a record").register(registry);
  }
}
