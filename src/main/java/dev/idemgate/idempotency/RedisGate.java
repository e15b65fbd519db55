package dev.idemgate.idempotency;

import dev.idemgate.storage.PipelinedRedis;
import io.vertx.circuitbreaker.CircuitBreaker;
import io.vertx.circuitbreaker.CircuitBreakerOptions;
import io.vertx.circuitbreaker.CircuitBreakerState;
import io.vertx.circuitbreaker.OpenCircuitException;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The fast gate and replay cache. One key per (merchant, idempotency key), decided in one atomic
 * {@code SET NX GET PX}: nothing there means this request claimed it; anything there is read back in
 * the same step. Redis is never trusted to forbid: a failure or timeout here sends the request on
 * to PostgreSQL, which makes the same decisions.
 *
 * <p>Values: {@code P|fingerprint|token|claimedAtMillis} (processing; earlier versions wrote no
 * {@code claimedAtMillis}), {@code N|fingerprint} (pending: ask the store),
 * {@code C|fingerprint|status|expiresAtMillis|paymentId|body} (completed; the body goes last because
 * it may contain '|'; past {@code expiresAtMillis} it decides nothing).
 */
public final class RedisGate {
  private static final Logger log = LoggerFactory.getLogger(RedisGate.class);
  private static final String COMPARE_AND_DELETE =
      "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

  private static final HexFormat HEX = HexFormat.of();

  private final PipelinedRedis redis;
  private final long timeoutMs;
  private final long leaseMs;
  private final CircuitBreaker breaker;

  /**
   * @param breaker opens after repeated Redis failures so that a frozen Redis costs one timeout per
   *     reset period instead of one per request; while open, the gate sends requests straight to
   *     PostgreSQL, and a half-open probe brings it back by itself
   */
  public RedisGate(PipelinedRedis redis, Duration timeout, Duration lease, CircuitBreaker breaker) {
    this.redis = redis;
    this.timeoutMs = timeout.toMillis();
    this.leaseMs = lease.toMillis();
    this.breaker = breaker;
  }

  /**
   * The breaker every gate uses: five failures open it for one second. It says once when it opens
   * and once when Redis answers again, not at each of the one-second tries in between (each failed
   * try opens it anew).
   */
  public static CircuitBreaker breaker(Vertx vertx) {
    AtomicBoolean open = new AtomicBoolean();
    return CircuitBreaker.create("idemgate-redis-gate", vertx, new CircuitBreakerOptions()
            .setMaxFailures(5).setTimeout(-1).setResetTimeout(1_000).setNotificationAddress(null))
        .openHandler(v -> {
          if (open.compareAndSet(false, true)) {
            log.warn("redis gate breaker open after repeated failures: payments are decided in PostgreSQL alone, "
                + "Redis tried again each second");
          }
        })
        .closeHandler(v -> {
          if (open.compareAndSet(true, false)) {
            log.info("redis gate breaker closed: Redis answers again");
          }
        });
  }

  /**
   * The Redis key. The whole (merchant, key) pair is the hash tag, so a Redis Cluster spreads
   * merchants' keys over all slots while each record stays on one slot.
   */
  public static String redisKey(String merchantId, IdempotencyKey key) {
    return "idemgate:idem:{" + merchantId + ":" + key.value() + "}";
  }

  public Future<GateDecision> claim(String merchantId, IdempotencyKey key, String fingerprint) {
    // Tells this request's claim from a later one in compare-and-delete: unique, not secret, so
    // no SecureRandom (UUID.randomUUID locks one shared generator on every request).
    ThreadLocalRandom random = ThreadLocalRandom.current();
    String token = HEX.toHexDigits(random.nextLong()) + HEX.toHexDigits(random.nextLong());
    // The claim's time travels in its value, so that a twin's SET ... GET reads its age in the same
    // step: a 409 tells when an answer can come (a holder that died leaves the key to recovery)
    // without another Redis call for the storm of twins on one key.
    String value = "P|" + fingerprint + "|" + token + "|" + System.currentTimeMillis();
    Request set = Request.cmd(Command.SET).arg(redisKey(merchantId, key)).arg(value)
        .arg("NX").arg("GET").arg("PX").arg(leaseMs);
    return breaker.<Response>execute(() -> send(set))
        .map(previous -> previous == null ? new GateDecision.Claimed(value)
            : decide(previous.toString(), fingerprint, System.currentTimeMillis()))
        .otherwise(failure -> {
          if (failure instanceof OpenCircuitException) {
            // The breaker said so when it opened (below): a line per payment would flood the log.
            log.debug("redis gate skipped, its breaker open: deciding in PostgreSQL alone");
          } else {
            warnUnlessBreakerTold("redis gate unavailable, deciding in PostgreSQL alone: {}", failure.toString());
            // The SET was sent and may have been applied with its reply late: a claim nobody frees,
            // whose key would answer 409 (or 422 to another payload) for the whole lease, though
            // this request goes on (or is answered 503, "retry") without it. Deleted if it is there:
            // at once, after the SET on the same connection; and again a deadline later, as the
            // failure may have dropped that connection and the delete gone out on a new one, ahead
            // of a SET still on its way.
            releaseOnce(merchantId, key, value);
            Context context = Vertx.currentContext();
            if (context != null) {
              context.owner().setTimer(timeoutMs, id -> releaseOnce(merchantId, key, value));
            }
          }
          return new GateDecision.AskStore();
        });
  }

  private static GateDecision decide(String stored, String fingerprint, long nowMillis) {
    // A pending marker only points to PostgreSQL, whatever its fingerprint: it may outlive the
    // record (written by a retry just as recovery released the key, or left by a failed delete),
    // and a marker that forbade a different payload would answer 422 for a key that is free.
    if (stored.length() < 2 || stored.charAt(1) != '|' || stored.charAt(0) == 'N') {
      return new GateDecision.AskStore();
    }
    String[] parts = stored.split("\\|", 6);
    if (stored.charAt(0) == 'C' && parts.length == 6 && Long.parseLong(parts[3]) <= nowMillis) {
      // A completed answer speaks for the key only until the expiry it told, when PostgreSQL frees the
      // key. Its PX was counted when its SET was sent, so a SET that reached Redis late (a stalled
      // Redis, a slow link) keeps it that much longer: past it, a replay would answer a new payment
      // with the old one, and a 422 would send a client whose new payment may be charged to a new key.
      return new GateDecision.AskStore();
    }
    if (parts.length < 2 || !parts[1].equals(fingerprint)) {
      // A processing claim is only the word of a request that has not yet asked PostgreSQL: after
      // Redis lost the key (eviction, a restart, a failover), another payload's request writes one
      // for a key PostgreSQL holds, and a retry of the payment PostgreSQL has must not hear 422
      // ("use a new key": a second charge for a client that obeys). PostgreSQL decides; it refuses
      // the other payload when it holds the key, with the same 422 as before.
      return stored.charAt(0) == 'P' ? new GateDecision.AskStore() : new GateDecision.Mismatch(parts.length < 2 ? "" : parts[1]);
    }
    return switch (stored.charAt(0)) {
      case 'P' -> new GateDecision.InFlight(claimAge(parts, nowMillis));
      case 'C' -> parts.length == 6
          ? new GateDecision.Replay(new StoredResponse(Integer.parseInt(parts[2]), parts[5], parts[4],
              Instant.ofEpochMilli(Long.parseLong(parts[3]))))
          : new GateDecision.AskStore();
      default -> new GateDecision.AskStore();
    };
  }

  /**
   * A processing claim's age, from the time its claimer wrote in it; null when it wrote none (an
   * earlier version) or something unreadable. Never negative: a claimer's clock ahead of this one's
   * makes a young claim, not one from the future.
   */
  private static Duration claimAge(String[] parts, long nowMillis) {
    if (parts.length < 4) {
      return null;
    }
    try {
      return Duration.ofMillis(Math.max(0, nowMillis - Long.parseLong(parts[3])));
    } catch (NumberFormatException unreadable) {
      return null;
    }
  }

  /**
   * Stores a completed response for replay until it expires, in place of the request's own claim
   * ({@code ownClaim}, null if it has none). Best effort: PostgreSQL already has it. An answer
   * already expired is not stored, and the request's claim is deleted instead: left behind, it would
   * answer the key 409 "in flight" for a whole lease while PostgreSQL holds the key as new (a claim
   * that read the record just after its expiry, behind a row lock or on a clock ahead of PostgreSQL's).
   * A write that fails deletes the claim too ({@link #setAndNotify}).
   */
  public Future<Void> complete(String merchantId, IdempotencyKey key, String fingerprint, StoredResponse response,
      String ownClaim) {
    long ttl = response.expiresAt().toEpochMilli() - System.currentTimeMillis();
    if (ttl <= 0) {
      return ownClaim == null ? Future.succeededFuture() : release(merchantId, key, ownClaim);
    }
    String value = "C|" + fingerprint + "|" + response.status() + "|" + response.expiresAt().toEpochMilli()
        + "|" + response.paymentId() + "|" + response.body();
    return setAndNotify(merchantId, key, value, ttl, "complete", ownClaim);
  }

  /**
   * Marks the key pending: retries then ask PostgreSQL, which follows recovery's progress. In place
   * of the request's own claim ({@code ownClaim}, null if it has none), as {@link #complete}.
   */
  public Future<Void> markPending(String merchantId, IdempotencyKey key, String fingerprint, Duration ttl,
      String ownClaim) {
    return setAndNotify(merchantId, key, "N|" + fingerprint, ttl.toMillis(), "mark pending", ownClaim);
  }

  /**
   * SET the record and PUBLISH to waiting twins in one round trip. Best effort: PostgreSQL has it.
   * When the write replaces the request's own claim ({@code ownClaim}) and fails, the claim is
   * deleted in its place, with a wake-up: left there, it would answer every retry 409 "in flight"
   * until its lease ends (30 s by default) for a payment PostgreSQL holds as done, and its waiting
   * twins would sit out their whole wait for a PUBLISH that never went. Without it, retries and
   * twins ask PostgreSQL, which has the answer. Only the compare-and-delete of the claim's own
   * token: it leaves alone a SET that was applied after all (its reply lost or late), or lands
   * later, whichever comes first. Nothing is added to a write that succeeds.
   */
  private Future<Void> setAndNotify(String merchantId, IdempotencyKey key, String value, long ttlMs, String what,
      String ownClaim) {
    Request set = Request.cmd(Command.SET).arg(redisKey(merchantId, key)).arg(value).arg("PX").arg(ttlMs);
    Future<List<Response>> written = redis.batch(List.of(set, CompletionNotifier.publish(merchantId, key)));
    if (ownClaim == null) {
      return ignoreFailure(written, what);
    }
    return written.timeout(timeoutMs, TimeUnit.MILLISECONDS).<Void>mapEmpty().recover(failure -> {
      warnUnlessBreakerTold("redis {} failed; this request's claim is deleted in its place, PostgreSQL stays "
          + "authoritative: {}", what, failure.toString());
      return releaseAndWake(merchantId, key, ownClaim);
    });
  }

  /**
   * Deletes this request's own claim, and nothing another request wrote since. A delete that fails
   * is tried again while the claim's lease may last ({@link #dropClaim}).
   */
  public Future<Void> release(String merchantId, IdempotencyKey key, String claimValue) {
    return dropClaim(merchantId, key, claimValue, false, "release");
  }

  /**
   * {@link #release} and {@link #wakeWaiters} in one round trip, the delete first: for a request that
   * ends with nothing for its twins to replay (503, 422), whose twins would otherwise sit out their
   * whole wait on a claim that is gone. Tried again as {@link #release} is.
   */
  public Future<Void> releaseAndWake(String merchantId, IdempotencyKey key, String claimValue) {
    return dropClaim(merchantId, key, claimValue, true, "release and wake waiters");
  }

  /**
   * Deletes a claim of this gateway's (and wakes its waiters, {@code wake}); the future, which never
   * fails, ends with the first try, within one Redis deadline. A claim whose delete failed would
   * answer its key 409 "in flight" until its lease ends, whatever PostgreSQL holds, so a failed try
   * is followed, in the background, by others a deadline later, then twice as long each time, until
   * one is answered or the lease (counted from now, so past the claim's) is over; none while the
   * breaker is open or half open, when Redis is taken as down and claims skip it (its half-open
   * probe tells when it is back). Deleting a claim by its own token is safe however late: the token is this
   * request's alone. Nothing is added to a delete that succeeds.
   */
  private Future<Void> dropClaim(String merchantId, IdempotencyKey key, String claimValue, boolean wake, String what) {
    return tryDrop(merchantId, key, claimValue, wake).recover(failure -> {
      warnUnlessBreakerTold("redis {} failed, tried again while the claim's lease lasts; PostgreSQL stays "
          + "authoritative: {}", what, failure.toString());
      Context context = Vertx.currentContext();
      if (context != null) {
        dropLater(context, merchantId, key, claimValue, wake, timeoutMs,
            System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(leaseMs));
      }
      return Future.succeededFuture();
    });
  }

  private void dropLater(Context context, String merchantId, IdempotencyKey key, String claimValue, boolean wake,
      long waitMs, long leaseEndsNanos) {
    if (System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(waitMs) >= leaseEndsNanos) {
      log.debug("redis claim not deleted within its lease; it has expired by now");
      return;
    }
    context.owner().setTimer(waitMs, id -> {
      Future<Void> tried = skipping() ? Future.failedFuture("breaker open") : tryDrop(merchantId, key, claimValue, wake);
      tried.onFailure(failure -> dropLater(context, merchantId, key, claimValue, wake, waitMs * 2, leaseEndsNanos));
    });
  }

  private Future<Void> tryDrop(String merchantId, IdempotencyKey key, String claimValue, boolean wake) {
    Future<?> sent = wake
        ? redis.batch(List.of(compareAndDelete(merchantId, key, claimValue), CompletionNotifier.publish(merchantId, key)))
        : redis.send(compareAndDelete(merchantId, key, claimValue));
    return sent.timeout(timeoutMs, TimeUnit.MILLISECONDS).mapEmpty();
  }

  /** One compare-and-delete, not tried again: for the gate's own claim, which does its own second try. */
  private void releaseOnce(String merchantId, IdempotencyKey key, String claimValue) {
    bestEffort(compareAndDelete(merchantId, key, claimValue), "release");
  }

  private static Request compareAndDelete(String merchantId, IdempotencyKey key, String claimValue) {
    return Request.cmd(Command.EVAL).arg(COMPARE_AND_DELETE).arg(1).arg(redisKey(merchantId, key)).arg(claimValue);
  }

  /** Deletes whatever is stored for the key (used when the record itself was released). */
  public Future<Void> forget(String merchantId, IdempotencyKey key) {
    return bestEffort(Request.cmd(Command.DEL).arg(redisKey(merchantId, key)), "forget");
  }

  /**
   * Wakes the twins waiting on a key ({@code Prefer: wait}) once the request they wait for ended
   * without an answer for them to replay. A woken twin looks once more and answers what a retry
   * would get now: a key free again (nothing claimed or charged under it) it may claim at once; a
   * key that stays held for longer than any wait (a release PostgreSQL did not take: until recovery
   * frees it) gets its 409 now instead of at the end of the wait. Not while another request still
   * holds the key in flight: a woken twin would find it so and answer 409 before its wait is up,
   * where that request's own completion wakes it with the answer.
   */
  public Future<Void> wakeWaiters(String merchantId, IdempotencyKey key) {
    return bestEffort(CompletionNotifier.publish(merchantId, key), "wake waiters");
  }

  /**
   * Whether the breaker is open or half open: claims skip Redis now (half open, all but its one
   * try), and so may writes no answer waits for. Half open counts: writes sent then, while Redis
   * still hangs, each waited out a deadline and logged a WARN, one per payment of that moment.
   */
  public boolean skipping() {
    return breaker.state() != CircuitBreakerState.CLOSED;
  }

  public Future<Void> ping() {
    return send(Request.cmd(Command.PING)).mapEmpty();
  }

  private Future<Response> send(Request request) {
    return redis.send(request).timeout(timeoutMs, TimeUnit.MILLISECONDS);
  }

  private Future<Void> bestEffort(Request request, String what) {
    return ignoreFailure(redis.send(request), what);
  }

  private Future<Void> ignoreFailure(Future<?> call, String what) {
    return call.timeout(timeoutMs, TimeUnit.MILLISECONDS).<Void>mapEmpty().otherwise(failure -> {
      warnUnlessBreakerTold("redis {} failed; PostgreSQL stays authoritative: {}", what, failure.toString());
      return null;
    });
  }

  /**
   * A Redis failure is a WARN only while the breaker is closed. Open or half open, its WARN has told
   * that Redis is down, and each failure after it is DEBUG: a payment's write, or the half-open try
   * each second, would otherwise log a line for every payment (or every second) of the outage.
   */
  private void warnUnlessBreakerTold(String format, Object... args) {
    if (breaker.state() == CircuitBreakerState.CLOSED) {
      log.warn(format, args);
    } else {
      log.debug(format, args);
    }
  }
}
