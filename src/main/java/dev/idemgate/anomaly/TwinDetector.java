package dev.idemgate.anomaly;

import dev.idemgate.idempotency.IdempotencyKey;
import dev.idemgate.idempotency.StoredResponse;
import dev.idemgate.payment.PayOutcome;
import dev.idemgate.payment.PaymentRequest;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The twin check on the hot path (docs/anomalies.md): one Redis script call per {@code POST /pay},
 * after validation and before the idempotency claim. One instance per API verticle, on that verticle's
 * Redis client, feeding the process-wide {@link AnomalyMonitor}.
 *
 * <p>Redis holds, per merchant and payment fingerprint, a hash that lives for the duplicate window:
 * {@code o} = the original's key hash and arrival time, {@code p} = its payment id once known, and
 * one field per key hash seen since with its mark ({@code o} original, {@code a} allowed twin,
 * {@code i} declared repeat, {@code r} refused twin). Remembering the keys is what keeps a retry with
 * the same key from ever counting as a twin, and keeps a refused twin refused on its retries.
 *
 * <p>The check never fails a payment: an error or a missed deadline is {@link TwinVerdict.Unobserved}.
 */
public final class TwinDetector {
  private static final Logger log = LoggerFactory.getLogger(TwinDetector.class);
  /** The header that declares a repeat intended, so policy reject lets it through. */
  public static final String REPEAT_HEADER = "Idempotency-Repeat";
  /** The check is advisory: it may delay a payment by this much at most, however slow Redis is. */
  static final long MAX_CHECK_MS = 250;
  /** Key hashes remembered per fingerprint; past this a twin's retries count again (bounded memory). */
  static final int MAX_KEYS_PER_FINGERPRINT = 64;

  static final String OBSERVE_SCRIPT = String.join("\n",
      "local origin = redis.call('HMGET', KEYS[1], 'o', 'p')",
      "if not origin[1] then",
      "  redis.call('HSET', KEYS[1], 'o', ARGV[1] .. '|' .. ARGV[2], ARGV[1], 'o')",
      "  redis.call('PEXPIRE', KEYS[1], ARGV[3])",
      "  return {'first'}",
      "end",
      "local mine = redis.call('HGET', KEYS[1], ARGV[1])",
      "if mine then",
      "  if mine == 'r' and ARGV[4] ~= 'r' then",
      "    redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])",
      "    mine = ARGV[4]",
      "  end",
      "  return {'seen', mine, origin[1], origin[2] or ''}",
      "end",
      "if redis.call('HLEN', KEYS[1]) < tonumber(ARGV[5]) then",
      "  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])",
      "end",
      "return {'twin', ARGV[4], origin[1], origin[2] or ''}");

  /** Records the original's payment id, or forgets the record when the original charged nothing. */
  static final String SETTLE_SCRIPT = String.join("\n",
      "local origin = redis.call('HGET', KEYS[1], 'o')",
      "if not origin or string.sub(origin, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. '|' then return 0 end",
      "if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end",
      "redis.call('HSET', KEYS[1], 'p', ARGV[2])",
      "return 1");

  private static final String OBSERVE_SHA = sha1(OBSERVE_SCRIPT);
  private static final String SETTLE_SHA = sha1(SETTLE_SCRIPT);
  private static final TwinVerdict UNOBSERVED = new TwinVerdict.Unobserved();
  private static final TwinVerdict SAME_KEY = new TwinVerdict.SameKey();

  private final AnomalyMonitor monitor;
  private final Redis redis;
  private final DuplicatePayloadPolicy policy;
  private final List<String> fields;
  private final long windowMs;
  private final long timeoutMs;

  TwinDetector(AnomalyMonitor monitor, Redis redis, DuplicatePayloadPolicy policy, List<String> fields,
      Duration window, Duration redisTimeout) {
    this.monitor = monitor;
    this.redis = redis;
    this.policy = policy;
    this.fields = fields;
    this.windowMs = window.toMillis();
    this.timeoutMs = Math.min(redisTimeout.toMillis(), MAX_CHECK_MS);
  }

  /** The Redis key of one payment fingerprint; merchant and fingerprint are the Cluster hash tag. */
  static String redisKey(String merchantId, String fingerprint) {
    return "idemgate:twin:{" + merchantId + ":" + fingerprint + "}";
  }

  /**
   * Checks one validated payment. The future always succeeds; {@link TwinVerdict.Reject} is the only
   * verdict that should stop the request.
   */
  public Future<TwinVerdict> observe(String merchantId, IdempotencyKey key, PaymentRequest request, MultiMap headers) {
    if (policy == DuplicatePayloadPolicy.OFF) {
      return Future.succeededFuture(UNOBSERVED);
    }
    String fingerprint = PaymentTwins.fingerprint(fields, request);
    String keyHash = PaymentTwins.keyHash(merchantId, key);
    String client = ClientIds.attribute(headers);
    boolean intended = "intended".equals(lower(headers.get(REPEAT_HEADER)));
    String mark = policy == DuplicatePayloadPolicy.REJECT && !intended ? "r" : intended ? "i" : "a";
    long now = System.currentTimeMillis();
    return script(OBSERVE_SHA, OBSERVE_SCRIPT, redisKey(merchantId, fingerprint),
        keyHash, String.valueOf(now), String.valueOf(windowMs), mark, String.valueOf(MAX_KEYS_PER_FINGERPRINT))
        .map(reply -> interpret(reply, merchantId, fingerprint, keyHash, client, now))
        .otherwise(failure -> {
          log.debug("twin check skipped: {}", failure.toString());
          monitor.unobserved();
          return UNOBSERVED;
        });
  }

  private TwinVerdict interpret(Response reply, String merchantId, String fingerprint, String keyHash, String client,
      long now) {
    String status = reply.get(0).toString();
    if (status.equals("first")) {
      monitor.recordFirst(merchantId, client, now);
      return new TwinVerdict.First(merchantId, fingerprint, keyHash);
    }
    String mark = reply.get(1).toString();
    TwinVerdict.Twin twin = twin(reply.get(2).toString(), reply.get(3).toString());
    if (status.equals("seen")) {
      // A key seen before: its earlier verdict stands and is not counted again.
      monitor.recordSameKey();
      return mark.equals("r") ? new TwinVerdict.Reject(twin) : SAME_KEY;
    }
    TwinVerdict verdict = mark.equals("r") ? new TwinVerdict.Reject(twin) : new TwinVerdict.Allowed(twin);
    monitor.recordTwin(merchantId, client, keyHash, twin, verdict, mark.equals("i"), now);
    return verdict;
  }

  /**
   * After the payment of a {@link TwinVerdict.First}: an original that was (or may have been) charged
   * keeps its record and names its payment, so a refused twin can point at it; one that charged
   * nothing (declined, provider unavailable, store down, key conflicts) lets its record go, because
   * repeating a payment that did not happen is no double charge. Fire and forget, bounded by the
   * Redis deadline.
   */
  public void settle(TwinVerdict verdict, PayOutcome outcome) {
    if (!(verdict instanceof TwinVerdict.First first)) {
      return;
    }
    StoredResponse response = null;
    if (outcome instanceof PayOutcome.Fresh fresh) {
      response = fresh.response();
    } else if (outcome instanceof PayOutcome.Replayed replayed) {
      response = replayed.response();
    }
    boolean maybeCharged = response != null && (response.status() == 201 || response.status() == 202);
    if (outcome instanceof PayOutcome.InFlight) {
      return; // the request holding the key settles it
    }
    script(SETTLE_SHA, SETTLE_SCRIPT, redisKey(first.merchantId(), first.fingerprint()), first.keyHash(),
        maybeCharged ? response.paymentId() : "")
        .onFailure(failure -> log.debug("twin record not settled: {}", failure.toString()));
  }

  private static TwinVerdict.Twin twin(String origin, String paymentId) {
    int bar = origin.indexOf('|');
    long at = bar < 0 ? 0 : Long.parseLong(origin.substring(bar + 1));
    return new TwinVerdict.Twin(bar < 0 ? origin : origin.substring(0, bar), at, paymentId.isEmpty() ? null : paymentId);
  }

  /** EVALSHA, loading the script with EVAL when this Redis has not seen it (restart, failover). */
  private Future<Response> script(String sha, String source, String key, String... args) {
    return send(Command.EVALSHA, sha, key, args).recover(failure -> {
      String message = String.valueOf(failure.getMessage());
      return message.startsWith("NOSCRIPT") ? send(Command.EVAL, source, key, args) : Future.failedFuture(failure);
    });
  }

  private Future<Response> send(Command command, String script, String key, String... args) {
    Request request = Request.cmd(command).arg(script).arg(1).arg(key);
    for (String arg : args) {
      request.arg(arg);
    }
    return redis.send(request).timeout(timeoutMs, TimeUnit.MILLISECONDS);
  }

  private static String lower(String s) {
    return s == null ? "" : s.trim().toLowerCase(Locale.ROOT);
  }

  private static String sha1(String text) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-1").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-1", e);
    }
  }
}
