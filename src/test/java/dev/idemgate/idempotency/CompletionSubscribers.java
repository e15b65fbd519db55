package dev.idemgate.idempotency;

import dev.idemgate.support.RespCommand;
import java.util.List;

/**
 * Requests waiting for a key's completion ({@code Prefer: wait}), as Redis sees them: the connections
 * subscribed to the key's completion channel. A waiter subscribes only once it found its twin in
 * flight, so a test that needs the waiter to be waiting polls this rather than sleeping.
 */
public final class CompletionSubscribers {
  private CompletionSubscribers() {}

  /**
   * {@code PUBSUB NUMSUB} of the key's completion channel on the Redis at {@code redisPort}: one per
   * subscriber connection (one per verticle or service whose request waits on the key, however many
   * of its requests do); -1 when Redis did not answer.
   */
  public static long of(int redisPort, String merchantId, String key) {
    List<String> reply = RespCommand.callForArray(redisPort, "PUBSUB", "NUMSUB",
        CompletionNotifier.channel(merchantId, new IdempotencyKey(key)));
    return reply == null || reply.size() != 2 ? -1 : Long.parseLong(reply.get(1));
  }
}
