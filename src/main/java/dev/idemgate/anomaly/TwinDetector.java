package dev.idemgate.anomaly;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.observability.ThrottledWarning;
import dev.idemgate.payment.ClaimGuard;
import dev.idemgate.payment.PaymentRequest;
import dev.idemgate.payment.PaymentService;
import dev.idemgate.storage.PipelinedRedis;
import dev.idemgate.storage.QuietLimit;
import dev.idemgate.storage.RedisClients;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisConnection;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.Tuple;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The twin check on the hot path (docs/anomalies.md), for new payments after validation: before the
 * idempotency claim under policy reject, beside it under flag ({@link #mayRefuse()}). One instance
 * per API verticle, on that verticle's Redis pipeline and client and PostgreSQL pool, feeding the
 * process-wide {@link AnomalyMonitor}.
 *
 * <p>A fresh payment costs one plain Redis command, {@code SET twin-key "keyHash|time" NX GET PX window}
 * on the merchant's payment fingerprint, sent on the verticle's {@link PipelinedRedis} so that it
 * shares a write with the gate's commands of the same event-loop turn (on a connection of its own it
 * cost a write and a Redis wake-up per payment; moving it cut Redis's CPU per payment by 16 %).
 * Nothing there: this is the original. The same key there: a retry, never a twin. Another
 * key: a twin, and only then a second step runs, a small script on a sibling hash that remembers the
 * twin keys with their verdicts, so that a twin's own retries keep its verdict (a refused twin stays
 * refused, and its retries are not counted again; past {@link #MAX_KEYS_PER_FINGERPRINT} keys a refusal is
 * not counted at all). On the payment path a twin counts only once its
 * key is taken ({@link #guard}), which PostgreSQL alone can say. The script goes on the detector's
 * own connection, never the pipeline: a NOSCRIPT reply (a restarted Redis) would fail every command
 * of the group it travelled in. Under policy reject a twin is refused only when the ledger says the original was (or may have been)
 * charged, looked up once by its provider key.
 *
 * <p>The check never fails a payment: a Redis error or a missed deadline is {@link TwinVerdict.Unobserved},
 * and checks are then skipped for {@link #RECONNECT_BACKOFF_MS}, so that a Redis that is down costs
 * one failed check per second, not one per payment.
 */
public final class TwinDetector {
  private static final Logger log = LoggerFactory.getLogger(TwinDetector.class);
  /** The header that declares a repeat intended, so policy reject lets it through. */
  public static final String REPEAT_HEADER = "Idempotency-Repeat";
  /** The check is advisory: it may delay a payment by this much at most, however slow Redis is. */
  static final long MAX_CHECK_MS = 250;
  /**
   * Twin keys remembered per fingerprint (bounded memory). A key past this is judged afresh each time
   * it comes. On the payment path a let-through one still counts once, when its claim takes the key
   * (its retries find the key held); but a refused one never takes its key, so its retries cannot be
   * told from its refusal: such a refusal is not counted at all (it still gets its 409).
   */
  static final int MAX_KEYS_PER_FINGERPRINT = 64;
  static final long RECONNECT_BACKOFF_MS = 1_000;

  /**
   * KEYS[1] the twin keys of one fingerprint; ARGV: key hash, mark (a allowed, i intended, r refused), window ms, max.
   * Answers {@code {'twin', mark}} for a key not seen before, {@code {'full', mark}} for one not seen before that
   * there is no room left to remember, {@code {'seen', mark}} for one seen before, and
   * {@code {'seen', mark, 'r'}} for a refused key now let through (sent as intended).
   */
  static final String TWIN_SCRIPT = String.join("\n",
      "local mine = redis.call('HGET', KEYS[1], ARGV[1])",
      "if mine then",
      "  if mine == 'r' and ARGV[2] ~= 'r' then",
      "    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])",
      "    return {'seen', ARGV[2], 'r'}",
      "  end",
      "  return {'seen', mine}",
      "end",
      "local n = redis.call('HLEN', KEYS[1])",
      "if n >= tonumber(ARGV[4]) then return {'full', ARGV[2]} end",
      "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])",
      "if n == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end",
      "return {'twin', ARGV[2]}");
  private static final String TWIN_SHA = sha1(TWIN_SCRIPT);
  /**
   * KEYS[1] the fingerprint's anchor, KEYS[2] its twin keys; ARGV: the new anchor ("keyHash|time"),
   * the old anchor's key hash, window ms, max, the new anchor's key hash. Makes an allowed twin the
   * anchor, unless another twin or a new window's first payment took it meanwhile, and marks it
   * allowed. The old anchor's key loses any mark: it charged nothing, so a request under it is either
   * a retry of the payment its key holds (declined: the claim replays it) or, its key released, a new
   * payment of this payload, judged against the new anchor like any twin (marked allowed, it went
   * through and was charged beside the new anchor). Answers {@code {1}} when it took the anchor or
   * this key holds it already (a retry of the same key racing it), else {@code {0, the current anchor}}.
   */
  static final String REANCHOR_SCRIPT = String.join("\n",
      "local current = redis.call('GET', KEYS[1])",
      "if current and string.sub(current, 1, string.len(ARGV[5]) + 1) == ARGV[5] .. '|' then return {1} end",
      "if current and string.sub(current, 1, string.len(ARGV[2]) + 1) ~= ARGV[2] .. '|' then return {0, current} end",
      "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])",
      "redis.call('HDEL', KEYS[2], ARGV[2])",
      "if redis.call('HLEN', KEYS[2]) < tonumber(ARGV[4]) then",
      "  redis.call('HSET', KEYS[2], ARGV[5], 'a')",
      "end",
      "redis.call('PEXPIRE', KEYS[2], ARGV[3])",
      "return {1}");
  private static final String REANCHOR_SHA = sha1(REANCHOR_SCRIPT);
  /** KEYS[1] a fingerprint's anchor; ARGV[1] an anchor value: deletes the anchor if it still holds exactly that. */
  static final String FORGET_SCRIPT = String.join("\n",
      "if redis.call('GET', KEYS[1]) == ARGV[1] then",
      "  redis.call('DEL', KEYS[1])",
      "  return 1",
      "end",
      "return 0");
  private static final String FORGET_SHA = sha1(FORGET_SCRIPT);
  /**
   * KEYS[1] a fingerprint's anchor, KEYS[2] its twin keys; ARGV: the anchor a twin's re-anchoring stored
   * (or ''), the anchor it replaced, that one's time left in ms, the twin's key hash, the key's mark
   * before the check (or '' for none). Undoes, for a twin under policy reject whose payment was not
   * taken, what its judging wrote: the anchor it took goes back to the one before (deleted if that
   * one's window is over), if it still holds exactly what the twin stored; and the twin's key gets
   * back its mark, or none, so that its retry is judged afresh, not as the retry of a let-through twin.
   */
  static final String GIVE_BACK_SCRIPT = String.join("\n",
      "if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then",
      "  if tonumber(ARGV[3]) > 0 then",
      "    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])",
      "  else",
      "    redis.call('DEL', KEYS[1])",
      "  end",
      "end",
      "if ARGV[5] == '' then",
      "  redis.call('HDEL', KEYS[2], ARGV[4])",
      "else",
      "  redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])",
      "end",
      "return 1");
  private static final String GIVE_BACK_SHA = sha1(GIVE_BACK_SCRIPT);
  /**
   * How much earlier than its anchor an original's ledger row may be dated: the anchor is set on one
   * instance's clock before the claim, the row's time on PostgreSQL's at the claim. An older row is an
   * earlier generation of a reused key, not this original.
   */
  static final long CLOCK_SKEW_MS = 5 * 60_000;
  /** The fields of the twin fingerprint the ledger holds, in the order they are compared. */
  private static final List<String> LEDGER_FIELDS = List.of("amount", "currency", "merchant_reference", "description");
  private static final TwinVerdict UNOBSERVED = new TwinVerdict.Unobserved();
  private static final TwinVerdict SAME_KEY = new TwinVerdict.SameKey();

  /** While PostgreSQL is down every suspected twin's lookup fails so: one line a second, not one per payment. */
  private final ThrottledWarning ledgerLookupWarning = new ThrottledWarning(log);
  private final AnomalyMonitor monitor;
  private final PipelinedRedis pipeline;
  private final Redis redis;
  private final Pool pool;
  private final DuplicatePayloadPolicy policy;
  private final long windowMs;
  private final long timeoutMs;
  private final long storeTimeoutMs;
  /** How long after its arrival an original with no ledger row may still end up charged. */
  private final long unresolvedMs;
  /** The ledger lookup of an original, comparing the fingerprint's fields the ledger holds ({@link #ledgerLookup}). */
  private final String originalInLedger;
  private final List<String> comparedFields;
  private Future<RedisConnection> connection;
  /** The gate client's {@link PipelinedRedis#reuseLimit} for {@link #connection} (none in Redis Cluster). */
  private final QuietLimit quiet;
  /*
   * The backoffs below are System.nanoTime() deadlines, compared by difference: on the wall clock, a
   * step back (NTP, a VM resumed) would skip every check for as long as the step.
   */
  private long reconnectNotBefore = System.nanoTime();
  private boolean closed;
  private final CredentialScanner credentials;
  /** Until when checks are skipped after a failed SET (a volatile: tests call from their own thread). */
  private volatile long pausedUntil = System.nanoTime();

  /**
   * @param pipeline the verticle's pipelined connection, for the SET of every fresh payment
   * @param redis the verticle's gate client, from which the detector opens its own connection for the
   *     script; it closes a connection nothing has been read from for a while, so one that hangs is left
   */
  TwinDetector(AnomalyMonitor monitor, PipelinedRedis pipeline, Redis redis, Pool pool, CredentialScanner credentials) {
    this.monitor = monitor;
    this.credentials = credentials;
    this.pipeline = pipeline;
    this.redis = redis;
    this.pool = pool;
    this.policy = monitor.config().duplicatePayloadPolicy();
    this.windowMs = monitor.config().duplicateWindow().toMillis();
    this.timeoutMs = Math.min(monitor.config().redisTimeout().toMillis(), MAX_CHECK_MS);
    this.storeTimeoutMs = monitor.config().storeTimeout().toMillis();
    // Until then an original without a ledger row may be in flight, or charged by an instance that
    // died before recording it and not yet recovered.
    this.unresolvedMs = monitor.config().unrecordedChargeWindow().toMillis();
    this.quiet = new QuietLimit(pipeline.reuseLimit()); // the same client, the same limit
    this.comparedFields = LEDGER_FIELDS.stream().filter(monitor.config().duplicateFields()::contains).toList();
    this.originalInLedger = ledgerLookup(comparedFields);
  }

  /**
   * The original's row in the ledger, by its provider key (a declined one only from this generation
   * of the key: not dated before the anchor), with {@code same}: whether it holds the twin's
   * payment, compared on {@code fields}. A row of another payment means the original's key holds
   * that one, so the twin's payment was never claimed under it (the claim answered 422).
   */
  static String ledgerLookup(List<String> fields) {
    StringBuilder same = new StringBuilder("true");
    for (int i = 0; i < fields.size(); i++) {
      same.append(" AND ").append(fields.get(i)).append(" IS NOT DISTINCT FROM $").append(i + 4);
    }
    // Only a declined row must be of this generation: a succeeded or pending one of an earlier
    // payment under the key refuses all the same (the safe side), and the anchor can be younger
    // than the original's row (a retry of the original that reached the check re-stored it).
    return "SELECT id, status, created_at, " + same + " AS same FROM idemgate.payments"
        + " WHERE provider_key = $1 AND merchant_id = $2 AND (status <> 'declined' OR created_at >= $3)";
  }

  /**
   * The check as the payment path's guard for one request: under policy reject it refuses a
   * {@link TwinVerdict.Reject}, otherwise it only observes. A twin, or the first payment of its payload
   * (a payment of its client in the twin rate), is counted only once PostgreSQL has
   * said what became of its key ({@link ClaimGuard#keySettled}): when the key is new and now stands for
   * this request (claimed and charged, declined or pending; or refused, the key found free). A held
   * key's request is a retry, whatever its payload is a twin of; a payment not taken (503, or 502)
   * counts nothing, and its retry is judged again. A twin whose key was judged before and let through
   * is counted too if this request takes the key: the earlier request's claim failed, or lost the race
   * to this one. A payment it let through that was then not taken (503, 502) or not claimed under its
   * key (422) gives up the anchor it took, as the first payment of its payload or as a twin
   * ({@link #forgetAnchor}, {@link #giveBack}).
   */
  public ClaimGuard guard(MultiMap headers) {
    return new ClaimGuard() {
      /*
       * Only this request's loop touches these. Under policy flag the check runs beside the claim,
       * so the verdict and what the store said of the key come in either order.
       */
      private PaymentService.PayCommand checked;
      /** The anchor this request's check stored (it was the first), else null. */
      private TwinVerdict.First first;
      /**
       * Counts this request as a payment of its client, once its key is known to be new: set when its
       * check found no anchor of its payload ({@link #first}), or one naming its own key; else null.
       */
      private Runnable paymentCount;
      /** The twin this request's check judged, else null. */
      private Judged twin;
      /** What became of this request's key, once PostgreSQL said; else null. */
      private KeyFate fate;
      private boolean settled;
      /** What this request's check wrote, being given back (its payment was not taken), else null. */
      private Future<Void> undone;

      @Override
      public Future<Optional<Object>> check(PaymentService.PayCommand cmd) {
        checked = cmd;
        first = null;
        paymentCount = null;
        twin = null;
        fate = null;
        settled = false;
        undone = null;
        return observe(cmd.merchantId(), cmd.key(), cmd.request(), headers, this::judged, count -> paymentCount = count)
            .map(verdict -> {
              first = verdict instanceof TwinVerdict.First f ? f : null;
              settle(); // under policy flag the store may have spoken first
              return mayRefuse() && verdict instanceof TwinVerdict.Reject ? Optional.of(verdict) : Optional.empty();
            });
      }

      @Override
      public void keySettled(PaymentService.PayCommand cmd, KeyFate fate) {
        this.fate = fate;
        settle();
      }

      private void judged(Judged judged) {
        twin = judged;
        settle();
      }

      private void settle() {
        if ((twin == null && paymentCount == null) || fate == null || settled) {
          return; // nothing to settle (no verdict), the check has not answered, or the store has not said
        }
        settled = true;
        switch (fate) {
          case NEW -> {
            if (paymentCount != null) {
              paymentCount.run();
            } else if (twin.count() != null) {
              twin.count().run();
            }
          }
          case HELD -> {
            // A retry of the key's own payment: no twin, and no new payment of its client either (a first
            // here is a retry whose anchor Redis no longer has: its window ran out, or Redis lost it).
            if (paymentCount != null || twin.count() != null) {
              monitor.recordSameKey();
            }
          }
          case NOT_TAKEN -> undoOnce(); // counts nothing: its retry is judged again
        }
      }

      /**
       * Gives back what this request's check wrote, once: the anchor it stored as the first payment of
       * its payload ({@link #forgetAnchor}), or what judging it as a twin wrote ({@link #giveBack}).
       */
      private Future<Void> undoOnce() {
        if (undone == null) {
          undone = first != null ? forgetAnchor(checked.merchantId(), checked.request(), first.anchor())
              : twin != null ? giveBack(checked.merchantId(), checked.request(), twin)
              : Future.succeededFuture();
        }
        return undone;
      }

      @Override
      public boolean mayRefuse() {
        return TwinDetector.this.mayRefuse();
      }

      @Override
      public Future<Void> notCharged(PaymentService.PayCommand cmd) {
        // Under policy flag a failed claim may come before the check's answer: settle() gives back then.
        return first == null && twin == null ? Future.succeededFuture() : undoOnce();
      }
    };
  }

  /**
   * A twin one check judged, as the guard settles it.
   *
   * @param mark the twin key's mark after the check ({@code a}, {@code i} or {@code r})
   * @param firstTime whether the key had no mark before the check
   * @param count counts the twin; null when the key was refused before and so counted already (its
   *     retries are counted as same_key at once), or is refused now and was not remembered (past
   *     {@link #MAX_KEYS_PER_FINGERPRINT}: counted under no result at all)
   */
  private record Judged(TwinVerdict verdict, String keyHash, boolean firstTime, String mark, Runnable count) {}

  /**
   * Undoes what judging a twin wrote, for a payment that was then not taken (its
   * claim failed, the provider did not charge it, or its key holds another payment): the anchor it took
   * by re-anchoring goes back to the original's, so the next twin is judged against that one (a payment
   * that was charged, or charged nothing) and not refused as a twin of a payment that does not exist;
   * and its key gets back the mark it had, so that its retry is judged as the first time, and counted
   * when it is taken (under flag, where a twin re-anchors too, a key judged before gets back its mark
   * allowed). For a twin let through with no anchor there is nothing to undo: a let-through key's retry
   * is counted anyway when it takes the key. Best effort.
   */
  private Future<Void> giveBack(String merchantId, PaymentRequest request, Judged twin) {
    String anchor = twin.verdict() instanceof TwinVerdict.Allowed allowed ? allowed.anchor() : null;
    if (anchor == null && !(twin.firstTime() && twin.mark().equals("r"))) {
      return Future.succeededFuture();
    }
    TwinVerdict.Twin original = twin.verdict() instanceof TwinVerdict.Allowed allowed ? allowed.twin()
        : ((TwinVerdict.Reject) twin.verdict()).twin();
    long left = original.originalAtMillis() + windowMs - System.currentTimeMillis();
    String fingerprint = PaymentTwins.fingerprint(monitor.config().duplicateFields(), request);
    return script(GIVE_BACK_SHA, GIVE_BACK_SCRIPT,
        List.of(redisKey(merchantId, fingerprint), twinKeysKey(merchantId, fingerprint)),
        anchor == null ? "" : anchor, original.originalKeyHash() + "|" + original.originalAtMillis(),
        String.valueOf(Math.max(0, left)), twin.keyHash(), twin.firstTime() ? "" : mayRefuse() ? "r" : "a")
        .<Void>mapEmpty()
        .otherwise(failure -> {
          log.debug("twin judging not given back: {}", failure.toString());
          return null;
        });
  }

  /**
   * Gives up the anchor this request stored for its payment's fingerprint, if it still holds it: the
   * payment was not charged under its key (its claim failed, the provider refused it, or the key holds
   * another payment), so a later payment of the same payload under another key is no twin of it. Left
   * in place, under policy reject such a payment got 409 while the anchor looked unresolved (66 s by
   * default). A claim that failed never reaches the provider (recovery never charges, and one that
   * committed late is deleted), nor does one the provider refused, so the only payment of this payload
   * that can be charged is a later one, which anchors anew. Only an anchor this request stored,
   * exactly: one naming the same key but stored by another request (the key's first payment, pending,
   * and this request a retry of it with another payload) stays. Best effort.
   */
  Future<Void> forgetAnchor(String merchantId, PaymentRequest request, String anchor) {
    if (policy == DuplicatePayloadPolicy.OFF) {
      return Future.succeededFuture();
    }
    String fingerprint = PaymentTwins.fingerprint(monitor.config().duplicateFields(), request);
    return script(FORGET_SHA, FORGET_SCRIPT, List.of(redisKey(merchantId, fingerprint)), anchor)
        .<Void>mapEmpty()
        .otherwise(failure -> {
          log.debug("twin anchor not given up: {}", failure.toString());
          return null;
        });
  }

  /** Whether a check may refuse a payment (policy reject); under flag and off it only observes. */
  public boolean mayRefuse() {
    return policy == DuplicatePayloadPolicy.REJECT;
  }

  /** The Redis key of one payment fingerprint; merchant and fingerprint are the Cluster hash tag. */
  static String redisKey(String merchantId, String fingerprint) {
    return "idemgate:twin:{" + merchantId + ":" + fingerprint + "}";
  }

  /** The sibling hash of twin keys, on the same Cluster slot. */
  static String twinKeysKey(String merchantId, String fingerprint) {
    return redisKey(merchantId, fingerprint) + ":keys";
  }

  /**
   * Checks one validated payment, and counts it at once. The future always succeeds;
   * {@link TwinVerdict.Reject} is the only verdict that should stop the request.
   */
  public Future<TwinVerdict> observe(String merchantId, IdempotencyKey key, PaymentRequest request, MultiMap headers) {
    return observe(merchantId, key, request, headers, null, null);
  }

  /**
   * @param twins null to count a twin here, the first time its key is judged (a key judged before is
   *     then {@link TwinVerdict.SameKey}); else takes every twin judged, to count it once PostgreSQL has
   *     said what became of its key ({@link ClaimGuard#keySettled}).
   * @param firsts null to count a first payment of its payload, and a retry of the key that anchors it,
   *     here; else takes what counts either as a payment of its client, for the same reason (before the
   *     returned future completes). Every other verdict is counted here.
   */
  private Future<TwinVerdict> observe(String merchantId, IdempotencyKey key, PaymentRequest request, MultiMap headers,
      Consumer<Judged> twins, Consumer<Runnable> firsts) {
    if (policy == DuplicatePayloadPolicy.OFF) {
      return Future.succeededFuture(UNOBSERVED);
    }
    String fingerprint = PaymentTwins.fingerprint(monitor.config().duplicateFields(), request);
    String keyHash = PaymentTwins.keyHash(merchantId, key);
    long now = System.currentTimeMillis();
    if (System.nanoTime() - pausedUntil < 0) {
      monitor.unobserved();
      return Future.succeededFuture(UNOBSERVED);
    }
    Request claim = Request.cmd(Command.SET).arg(redisKey(merchantId, fingerprint)).arg(keyHash + "|" + now)
        .arg("NX").arg("GET").arg("PX").arg(windowMs);
    return pipeline.send(claim).timeout(timeoutMs, TimeUnit.MILLISECONDS)
        .onFailure(failure -> pausedUntil = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RECONNECT_BACKOFF_MS))
        .compose(previous -> {
          String client = ClientIds.attribute(headers, credentials);
          Runnable payment = () -> monitor.recordFirst(merchantId, client, now);
          if (previous == null) {
            if (firsts == null) {
              payment.run();
            } else {
              firsts.accept(payment);
            }
            return Future.succeededFuture(new TwinVerdict.First(keyHash, keyHash + "|" + now));
          }
          TwinVerdict.Twin original = parse(previous.toString());
          if (original.originalKeyHash().equals(keyHash)) {
            // The key that anchors its payload, again: a retry, unless the key's first request was not
            // taken and this one takes the key (a 500, whose fate the guard never heard; a 503 whose
            // anchor outlived it), when it is the first payment of its payload after all.
            if (firsts == null) {
              monitor.recordSameKey();
            } else {
              firsts.accept(payment);
            }
            return Future.succeededFuture(SAME_KEY);
          }
          return twin(merchantId, fingerprint, keyHash, original, request, client, intended(headers), now, twins);
        })
        .otherwise(failure -> {
          log.debug("twin check skipped: {}", failure.toString());
          monitor.unobserved();
          return UNOBSERVED;
        });
  }

  private Future<TwinVerdict> twin(String merchantId, String fingerprint, String keyHash, TwinVerdict.Twin original,
      PaymentRequest request, String client, boolean intended, long now, Consumer<Judged> twins) {
    String mark = intended ? "i" : policy == DuplicatePayloadPolicy.REJECT ? "r" : "a";
    return script(TWIN_SHA, TWIN_SCRIPT, List.of(twinKeysKey(merchantId, fingerprint)), keyHash, mark,
        String.valueOf(windowMs), String.valueOf(MAX_KEYS_PER_FINGERPRINT))
        .compose(reply -> {
          boolean firstTime = !reply.get(0).toString().equals("seen");
          // No room to remember the key: its next request will look like a first time again.
          boolean remembered = !reply.get(0).toString().equals("full");
          String verdictMark = reply.get(1).toString();
          // A key refused before and now sent as intended: its first time through.
          boolean refusedBefore = reply.size() > 2;
          if (!firstTime && !refusedBefore && !verdictMark.equals("r") && twins == null) {
            monitor.recordSameKey(); // the retry of a twin that went through: its verdict stands
            return Future.succeededFuture(SAME_KEY);
          }
          // A key let through before goes on as it did. Its twin is counted only if this request takes
          // the key (the guard): the earlier one's claim failed, or this one won the race of the two.
          Future<TwinVerdict> verdict = verdictMark.equals("r")
              ? byLedger(merchantId, fingerprint, keyHash, original, request, now, reject -> reject,
                  (allowed, taken) -> taken.orElseGet(
                      () -> new TwinVerdict.Allowed(allowed.twin(), false, keyHash + "|" + now, false)))
              : verdictMark.equals("i") && (firstTime || refusedBefore) && policy == DuplicatePayloadPolicy.REJECT
              ? intendedUnderReject(merchantId, fingerprint, keyHash, original, request, now)
              : verdictMark.equals("a") && policy == DuplicatePayloadPolicy.FLAG
              ? flagged(merchantId, fingerprint, keyHash, original, request, now)
              // Under reject a key marked allowed was let through because its original charged nothing;
              // a repeat declared intended is held against no client, whatever its original became.
              : Future.succeededFuture(new TwinVerdict.Allowed(original, verdictMark.equals("i"), null, false));
          return verdict.onSuccess(v -> {
            // A refused key's retry was counted with the refusal, whatever it gets now. A refusal of a
            // key not remembered is not counted: its retries could not be told from it, and each would
            // count again (MAX_KEYS_PER_FINGERPRINT).
            boolean refusedRetry = !firstTime && verdictMark.equals("r");
            boolean counts = !refusedRetry && (remembered || !(v instanceof TwinVerdict.Reject));
            Runnable count = () -> monitor.recordTwin(merchantId, client, keyHash, v, now);
            if (refusedRetry) {
              monitor.recordSameKey();
            } else if (counts && twins == null) {
              count.run();
            }
            if (twins != null) {
              twins.accept(new Judged(v, keyHash, firstTime, verdictMark, counts ? count : null));
            }
          });
        });
  }

  /**
   * A repeat declared intended goes on whatever its original became; under policy reject it is still
   * judged like any twin, only to keep the anchor right: when its original charged nothing it becomes
   * the anchor ({@link #reanchor}), so that a later twin is judged against the payment that may now be
   * charged. Else a twin sent after a charged intended repeat of a declined original would be judged
   * against the declined one, let through and charged again. When the original was (or may have been)
   * charged, it stays the anchor, and a later twin is refused against it. The ledger lookup costs
   * intended repeats only.
   */
  private Future<TwinVerdict> intendedUnderReject(String merchantId, String fingerprint, String keyHash,
      TwinVerdict.Twin original, PaymentRequest request, long now) {
    return byLedger(merchantId, fingerprint, keyHash, original, request, now,
        reject -> new TwinVerdict.Allowed(reject.twin(), true, null, true),
        (allowed, taken) -> new TwinVerdict.Allowed(allowed.twin(), true, taken.isPresent() ? null : keyHash + "|" + now,
            taken.isPresent()));
  }

  /**
   * Under policy flag a twin is charged whatever its original became, but it is held against its
   * client only if the original was, or may have been, charged: a new key after a decline (or a
   * release) is what a client should send, since nothing was charged, and a storefront with many
   * declined cards tried again would otherwise be judged to defeat idempotency. The ledger decides,
   * as it does under reject ({@link #confirmRefusal}: an original in flight, with no row yet, counts,
   * as does one the ledger could not be asked about). An original that charged nothing gives its
   * place to the twin ({@link #reanchor}), so that a later twin is judged against the payment that
   * may now be charged: judged against the declined one, a client charging a retried payment twice
   * would count nothing. Costs twins only, one ledger lookup each, beside the claim and the charge.
   */
  private Future<TwinVerdict> flagged(String merchantId, String fingerprint, String keyHash, TwinVerdict.Twin original,
      PaymentRequest request, long now) {
    return byLedger(merchantId, fingerprint, keyHash, original, request, now,
        reject -> new TwinVerdict.Allowed(reject.twin(), false, null, true),
        (allowed, taken) -> taken
            // Another payment took the anchor meanwhile (a twin let through a moment before): a twin of that one.
            .<TwinVerdict>map(other -> new TwinVerdict.Allowed(((TwinVerdict.Reject) other).twin(), false, null, true))
            .orElseGet(() -> new TwinVerdict.Allowed(allowed.twin(), false, keyHash + "|" + now, false)));
  }

  /**
   * A twin judged by its original's fate in the ledger ({@link #confirmRefusal}): {@code charged} makes
   * the verdict when the original was, or may have been, charged; when it charged nothing this payment
   * takes its place as the anchor ({@link #reanchor}) and {@code nothingCharged} makes the verdict,
   * given the refusal naming the payment that took the anchor first, if one did (empty when this one
   * took it, or the re-anchor failed). The three policies' cases differ only in those two verdicts.
   */
  private Future<TwinVerdict> byLedger(String merchantId, String fingerprint, String keyHash, TwinVerdict.Twin original,
      PaymentRequest request, long now, Function<TwinVerdict.Reject, TwinVerdict> charged,
      BiFunction<TwinVerdict.Allowed, Optional<TwinVerdict>, TwinVerdict> nothingCharged) {
    return confirmRefusal(merchantId, fingerprint, original, request, now).compose(v -> v instanceof TwinVerdict.Allowed allowed
        ? reanchor(merchantId, fingerprint, keyHash, original, now).map(taken -> nothingCharged.apply(allowed, taken))
        : Future.succeededFuture(charged.apply((TwinVerdict.Reject) v)));
  }

  /**
   * A twin is refused only if its original was, or may have been, charged. The ledger answers by the
   * original's provider key: succeeded or pending refuses (naming the payment); declined lets the new
   * attempt through, and so does a row of another payment (the original's key holds that one, so
   * this payment was never claimed under it: its claim got 422). No row of this generation of the key
   * means the original may still be charged (in flight, or held by an instance that died after
   * sending it, until recovery records or frees it) while it is younger than {@link #unresolvedMs},
   * and charged nothing when older (it was released). That age is read on Redis's clock
   * ({@link #anchorAgeMs}). If the ledger cannot answer, the twin is refused: under this policy a
   * refused repeat is the safe mistake, and the claim would fail anyway. Under policy flag the same
   * answer decides whether the twin is held against its client ({@link #flagged}): a refusal here
   * means it is.
   */
  private Future<TwinVerdict> confirmRefusal(String merchantId, String fingerprint, TwinVerdict.Twin original,
      PaymentRequest request, long now) {
    Tuple params = Tuple.of(original.originalKeyHash(), merchantId,
        OffsetDateTime.ofInstant(Instant.ofEpochMilli(original.originalAtMillis() - CLOCK_SKEW_MS), ZoneOffset.UTC));
    for (String field : comparedFields) {
      params.addValue(switch (field) {
        case "amount" -> request.amount();
        case "currency" -> request.currency();
        case "merchant_reference" -> request.merchantReference();
        default -> request.description();
      });
    }
    return pool.preparedQuery(originalInLedger).execute(params)
        .timeout(storeTimeoutMs, TimeUnit.MILLISECONDS)
        .compose(rows -> {
          Row row = rows.iterator().hasNext() ? rows.iterator().next() : null;
          if (row == null) {
            return anchorAgeMs(merchantId, fingerprint, original, now).map(age -> age < unresolvedMs
                ? (TwinVerdict) new TwinVerdict.Reject(original)
                : new TwinVerdict.Allowed(original, false, null, false));
          }
          TwinVerdict.Twin named = new TwinVerdict.Twin(original.originalKeyHash(), original.originalAtMillis(),
              row.getString("id"), row.getOffsetDateTime("created_at").toInstant());
          return Future.succeededFuture("declined".equals(row.getString("status")) || !row.getBoolean("same")
              ? new TwinVerdict.Allowed(named, false, null, false)
              : new TwinVerdict.Reject(named));
        })
        .otherwise(failure -> {
          ledgerLookupWarning.warn("ledger lookup for a suspected twin failed, {}: {}",
              mayRefuse() ? "refusing it" : "counting it", failure.toString());
          return new TwinVerdict.Reject(original);
        });
  }

  /**
   * How long ago the original's anchor was stored, on Redis's clock: the anchor is stored with the
   * window as its expiry, so its age is the window less the time it has left. Read on the wall
   * clocks (this instance's now against the anchoring instance's time in the anchor), a clock stepped
   * forward by a minute or more, or an anchoring instance that far behind, made an original still at
   * the acquirer look old enough to have been released, and under policy reject its twin was charged
   * beside it (DuplicateRejectIT#inFlightOriginalAfterAClockStepForward). An anchor with no expiry
   * left to read (gone meanwhile) falls back to the wall clocks.
   */
  private Future<Long> anchorAgeMs(String merchantId, String fingerprint, TwinVerdict.Twin original, long now) {
    return pipeline.send(Request.cmd(Command.PTTL).arg(redisKey(merchantId, fingerprint)))
        .timeout(timeoutMs, TimeUnit.MILLISECONDS)
        .map(left -> left != null && left.toLong() >= 0 ? windowMs - left.toLong() : now - original.originalAtMillis());
  }

  /**
   * An allowed twin (its original declined, or released) is the payment that may now be charged, so
   * it becomes the anchor: the next twin is judged against it, not against the original that
   * charged nothing (which would let every further twin through). If another payment took the anchor
   * meanwhile (a twin let through a moment before, or a new window's first payment), this twin is a
   * twin of that one, which is in flight: it is refused, naming it, as a twin of an original with no
   * ledger row yet is; two twins of a declined original arriving together were both charged. Best
   * effort otherwise: a failure leaves the old anchor, and the twin its verdict.
   *
   * @return the refusal when another payment holds the anchor, else empty
   */
  private Future<Optional<TwinVerdict>> reanchor(String merchantId, String fingerprint, String keyHash,
      TwinVerdict.Twin original, long now) {
    return script(REANCHOR_SHA, REANCHOR_SCRIPT, List.of(redisKey(merchantId, fingerprint), twinKeysKey(merchantId, fingerprint)),
        keyHash + "|" + now, original.originalKeyHash(), String.valueOf(windowMs), String.valueOf(MAX_KEYS_PER_FINGERPRINT),
        keyHash)
        .map(reply -> reply.get(0).toInteger() == 1
            ? Optional.<TwinVerdict>empty()
            : Optional.<TwinVerdict>of(new TwinVerdict.Reject(parse(reply.get(1).toString()))))
        .otherwise(failure -> {
          log.debug("twin re-anchor skipped: {}", failure.toString());
          return Optional.empty();
        });
  }

  private static TwinVerdict.Twin parse(String stored) {
    int bar = stored.indexOf('|');
    if (bar < 0) {
      return new TwinVerdict.Twin(stored, 0, null, null);
    }
    return new TwinVerdict.Twin(stored.substring(0, bar), Long.parseLong(stored.substring(bar + 1)), null, null);
  }

  private static boolean intended(MultiMap headers) {
    String value = headers.get(REPEAT_HEADER);
    return value != null && value.trim().toLowerCase(Locale.ROOT).equals("intended");
  }

  /** EVALSHA, loading the script with EVAL when this Redis has not seen it (restart, failover). */
  private Future<Response> script(String sha, String source, List<String> keys, String... args) {
    return sendOnOwnConnection(scriptRequest(Command.EVALSHA, sha, keys, args)).recover(failure -> {
      String message = String.valueOf(failure.getMessage());
      return message.startsWith("NOSCRIPT")
          ? sendOnOwnConnection(scriptRequest(Command.EVAL, source, keys, args))
          : Future.failedFuture(failure);
    });
  }

  private static Request scriptRequest(Command command, String script, List<String> keys, String... args) {
    Request request = Request.cmd(command).arg(script).arg(keys.size());
    for (String key : keys) {
      request.arg(key);
    }
    for (String arg : args) {
      request.arg(arg);
    }
    return request;
  }

  private Future<Response> sendOnOwnConnection(Request request) {
    Future<RedisConnection> on = connection();
    return on.compose(c -> c.send(request)).onSuccess(answer -> heardFrom(on))
        .timeout(timeoutMs, TimeUnit.MILLISECONDS);
  }

  /**
   * The detector's own connection for the script, taken from the verticle's Redis client on the
   * first twin and kept. A broken connection is dropped and reopened on the next twin, at most once
   * per {@link #RECONNECT_BACKOFF_MS}; in between, twins get no verdict. A connection the client
   * closed (idle, or hung: nothing read from it for a while) is reopened by the next twin at once,
   * and one quiet for the client's reuse limit is left to that close, as {@link PipelinedRedis}
   * leaves its own: a twin written on it as it closes would get no verdict.
   */
  private synchronized Future<RedisConnection> connection() {
    if (connection != null && connection.succeeded() && quiet.passed()) {
      connection = null;
    }
    if (connection == null) {
      if (closed || System.nanoTime() - reconnectNotBefore < 0) {
        return Future.failedFuture("twin check paused: Redis connection failed recently");
      }
      Future<RedisConnection> opening = RedisClients.connect(redis, timeoutMs);
      connection = opening;
      opening.onSuccess(c -> {
        heardFrom(opening);
        c.exceptionHandler(failure -> drop(opening, true));
        c.endHandler(v -> drop(opening, false));
      }).onFailure(failure -> drop(opening, true));
    }
    return connection;
  }

  private synchronized void heardFrom(Future<RedisConnection> which) {
    if (connection == which) {
      quiet.heard();
    }
  }

  private synchronized void drop(Future<RedisConnection> broken, boolean failed) {
    if (connection == broken) {
      connection = null;
      if (failed) {
        reconnectNotBefore = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RECONNECT_BACKOFF_MS);
      }
      broken.onSuccess(RedisConnection::close);
    } else if (!quiet.limit().isZero()) {
      // One left for being quiet (never a cluster connection, which ends node by node): closing it
      // once it has ended only ends its lease.
      broken.onSuccess(RedisConnection::close);
    }
  }

  /** Whether the script's own connection is open or opening (tests: plain checks never open it). */
  synchronized boolean ownConnectionInUse() {
    return connection != null;
  }

  /** Gives the connection back; the verticle closes its Redis client after this. */
  public synchronized Future<Void> close() {
    Future<RedisConnection> open = connection;
    connection = null;
    closed = true;
    return open == null ? Future.succeededFuture() : open.compose(RedisConnection::close).otherwiseEmpty();
  }

  private static String sha1(String text) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-1").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-1", e);
    }
  }
}
