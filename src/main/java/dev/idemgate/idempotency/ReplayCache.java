package dev.idemgate.idempotency;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Expiry;
import java.time.Duration;
import java.time.Instant;

/**
 * Completed responses kept in this process, in front of the Redis gate, so that a replay is
 * answered without a network round trip, a JSON parse or a canonical fingerprint.
 *
 * <p>Why it is safe: a COMPLETED record never changes until its key expires (recovery, release and
 * completion only touch PROCESSING and PENDING records), and an entry ends at the key's expiry,
 * when the key becomes new again everywhere. Only completed answers (201, 402) go in; a pending
 * 202 evolves and always goes to Redis and PostgreSQL.
 *
 * <p>An entry matches a request only if the request's body has the same bytes as the request that
 * put it there (compared by SHA-256, so no body is kept). A body with the same meaning but other
 * bytes (keys reordered, spaces) takes the normal path, which compares canonical fingerprints.
 * Keys are scoped by merchant. Thread-safe; one cache serves every API verticle of the process.
 */
public final class ReplayCache {
  private record Entry(String bodyDigest, StoredResponse response) {}

  private final Cache<String, Entry> entries;

  /** @param maxEntries entries kept at most, least useful first out; 0 for none */
  public ReplayCache(int maxEntries) {
    this.entries = maxEntries <= 0 ? null : Caffeine.newBuilder()
        .maximumSize(maxEntries)
        // Upkeep (eviction, expiry) runs in the calling thread, a few entries at a time, instead of
        // handing a task to the common fork-join pool on every write.
        .executor(Runnable::run)
        .expireAfter(Expiry.<String, Entry>creating((key, entry) ->
            Duration.ofMillis(Math.max(0, entry.response().expiresAt().toEpochMilli() - System.currentTimeMillis()))))
        .build();
  }

  /** Whether the cache holds anything at all ({@code replay_cache_entries} above 0). */
  public boolean isOn() {
    return entries != null;
  }

  /** The completed response of this key if the body has the same bytes as when it was stored, else null. */
  public StoredResponse find(String merchantId, IdempotencyKey key, String bodyDigest) {
    if (entries == null || bodyDigest == null) {
      return null;
    }
    Entry entry = entries.getIfPresent(id(merchantId, key));
    if (entry == null || !entry.bodyDigest().equals(bodyDigest)) {
      return null;
    }
    // Caffeine's expiry is checked lazily; the key's own expiry is the one that counts.
    return entry.response().expiresAt().isAfter(Instant.now()) ? entry.response() : null;
  }

  /** Keeps a completed response (201 or 402); anything else is ignored. */
  public void remember(String merchantId, IdempotencyKey key, String bodyDigest, StoredResponse response) {
    if (entries == null || bodyDigest == null || !isFinal(response)
        || !response.expiresAt().isAfter(Instant.now())) {
      return;
    }
    entries.put(id(merchantId, key), new Entry(bodyDigest, response));
  }

  /** Entries held now, approximately, without any upkeep: cheap enough for a gauge. */
  public long estimatedSize() {
    return entries == null ? 0 : entries.estimatedSize();
  }

  /** Entries held now, after pending upkeep (evictions, expiries), for tests. */
  public long size() {
    if (entries == null) {
      return 0;
    }
    entries.cleanUp();
    return entries.estimatedSize();
  }

  static boolean isFinal(StoredResponse response) {
    return response.status() == 201 || response.status() == 402;
  }

  private static String id(String merchantId, IdempotencyKey key) {
    return merchantId + '\u0000' + key.value();
  }
}
