package dev.idemgate.idempotency;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.pgclient.PgException;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class IdempotencyStoreTest {
  private static StoreUnavailable failed(String operation, String sqlState) {
    return new StoreUnavailable(operation, new PgException("refused", "ERROR", sqlState, null));
  }

  @Test
  @DisplayName("a grouped write is tried write by write after a refused value, a deadlock, a serialization failure or the server out "
      + "of (shared) memory, and only then")
  void whichFailuresSendEachWriteAlone() {
    for (String operation : new String[] {"claim", "complete"}) {
      assertThat(IdempotencyStore.changedNothing(failed(operation, "22P05"))).as(operation + " 22P05").isTrue();
      assertThat(IdempotencyStore.changedNothing(failed(operation, "23505"))).as(operation + " 23505").isTrue();
      assertThat(IdempotencyStore.changedNothing(failed(operation, "40P01"))).as(operation + " deadlock").isTrue();
      assertThat(IdempotencyStore.changedNothing(failed(operation, "40001"))).as(operation + " serialization").isTrue();
      // The lock table full ("out of shared memory"): one write takes one charge lock.
      assertThat(IdempotencyStore.changedNothing(failed(operation, "53200"))).as(operation + " out of memory").isTrue();
      // Whether the statement took effect is unknown: trying again could write twice.
      assertThat(IdempotencyStore.changedNothing(failed(operation, "40003"))).as(operation + " 40003").isFalse();
      assertThat(IdempotencyStore.changedNothing(failed(operation, "08006"))).as(operation + " connection").isFalse();
      assertThat(IdempotencyStore.changedNothing(failed(operation, "57014"))).as(operation + " cancelled").isFalse();
    }
    assertThat(IdempotencyStore.changedNothing(failed("read", "22P05"))).as("a READ is not a write").isFalse();
    assertThat(IdempotencyStore.changedNothing(new StoreUnavailable("claim", new IllegalStateException("timeout"))))
        .isFalse();
  }
}
