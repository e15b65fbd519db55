package dev.idemgate.idempotency;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class ReplayCacheTest {
  private static final IdempotencyKey KEY = new IdempotencyKey("order-1");

  private static StoredResponse response(int status, Duration expiresIn) {
    return new StoredResponse(status, "{\"id\":\"pay_1\"}", "pay_1", Instant.now().plus(expiresIn));
  }

  @Test
  @DisplayName("a completed answer (201 or 402) is found again for the same merchant, key and body bytes")
  void completedAnswersAreKept() {
    ReplayCache cache = new ReplayCache(10);
    StoredResponse created = response(201, Duration.ofHours(1));
    StoredResponse declined = response(402, Duration.ofHours(1));
    cache.remember("m", KEY, "digest-a", created);
    cache.remember("m", new IdempotencyKey("order-2"), "digest-b", declined);

    assertThat(cache.find("m", KEY, "digest-a")).isSameAs(created);
    assertThat(cache.find("m", new IdempotencyKey("order-2"), "digest-b")).isSameAs(declined);
  }

  @Test
  @DisplayName("other body bytes, another merchant or another key find nothing")
  void onlyTheSameRequestMatches() {
    ReplayCache cache = new ReplayCache(10);
    cache.remember("m", KEY, "digest-a", response(201, Duration.ofHours(1)));

    assertThat(cache.find("m", KEY, "digest-other")).isNull();
    assertThat(cache.find("other-merchant", KEY, "digest-a")).isNull();
    assertThat(cache.find("m", new IdempotencyKey("order-9"), "digest-a")).isNull();
    assertThat(cache.find("m", KEY, null)).isNull();
  }

  @Test
  @DisplayName("a pending 202 is never kept: it changes when recovery finishes the payment")
  void pendingIsNotKept() {
    ReplayCache cache = new ReplayCache(10);
    cache.remember("m", KEY, "digest-a", response(202, Duration.ofHours(1)));

    assertThat(cache.find("m", KEY, "digest-a")).isNull();
    assertThat(cache.size()).isZero();
  }

  @Test
  @DisplayName("an answer whose key has expired is neither kept nor returned: the key is new again")
  void expiredKeysAreNew() throws InterruptedException {
    ReplayCache cache = new ReplayCache(10);
    cache.remember("m", KEY, "digest-a", response(201, Duration.ofSeconds(-1)));
    assertThat(cache.find("m", KEY, "digest-a")).isNull();

    cache.remember("m", KEY, "digest-a", response(201, Duration.ofMillis(1_000)));
    assertThat(cache.find("m", KEY, "digest-a")).isNotNull();
    Thread.sleep(1_200);
    assertThat(cache.find("m", KEY, "digest-a")).isNull();
  }

  @Test
  @DisplayName("the cache holds at most its configured number of entries, and 0 holds none")
  void bounded() {
    ReplayCache cache = new ReplayCache(100);
    for (int i = 0; i < 1_000; i++) {
      cache.remember("m", new IdempotencyKey("k" + i), "d" + i, response(201, Duration.ofHours(1)));
    }
    assertThat(cache.size()).isLessThanOrEqualTo(100);

    ReplayCache off = new ReplayCache(0);
    off.remember("m", KEY, "digest-a", response(201, Duration.ofHours(1)));
    assertThat(off.find("m", KEY, "digest-a")).isNull();
  }
}
