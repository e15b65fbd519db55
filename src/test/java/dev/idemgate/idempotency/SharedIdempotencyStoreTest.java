package dev.idemgate.idempotency;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.pgclient.PgBuilder;
import io.vertx.sqlclient.Pool;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class SharedIdempotencyStoreTest {
  private Vertx vertx;
  private Pool pool; // never connects: no statement is run

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
    pool = PgBuilder.pool().using(vertx).build();
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private IdempotencyStore newStore(Context context) {
    return new IdempotencyStore(pool, context, 1, Duration.ofSeconds(1), Duration.ofSeconds(30), "simulator");
  }

  @Test
  @DisplayName("every member gets the store the first member made; later factories are never called")
  void oneStoreForAll() {
    SharedIdempotencyStore shared = new SharedIdempotencyStore();
    Context first = vertx.getOrCreateContext();
    AtomicInteger made = new AtomicInteger();

    IdempotencyStore a = shared.join(() -> { made.incrementAndGet(); return newStore(first); });
    IdempotencyStore b = shared.join(() -> { made.incrementAndGet(); return newStore(first); });

    assertThat(b).isSameAs(a);
    assertThat(made).hasValue(1);
    assertThat(shared.members()).isEqualTo(2);
  }

  @Test
  @DisplayName("a member's leave completes only when the last member has left, on the leaver's own context")
  void leaveWaitsForEveryMember() throws Exception {
    SharedIdempotencyStore shared = new SharedIdempotencyStore();
    Context first = vertx.getOrCreateContext();
    Context second = vertx.getOrCreateContext();
    shared.join(() -> newStore(first));
    shared.join(() -> newStore(first));

    CompletableFuture<Context> firstLeft = new CompletableFuture<>();
    onContext(first, () -> shared.leave(first).onSuccess(v -> firstLeft.complete(Vertx.currentContext())));
    Thread.sleep(200);
    assertThat(firstLeft).as("the store's loop and pool must outlive the other member's requests").isNotDone();

    CompletableFuture<Context> secondLeft = new CompletableFuture<>();
    onContext(second, () -> shared.leave(second).onSuccess(v -> secondLeft.complete(Vertx.currentContext())));

    assertThat(firstLeft.get(5, TimeUnit.SECONDS)).isSameAs(first);
    assertThat(secondLeft.get(5, TimeUnit.SECONDS)).isSameAs(second);
  }

  @Test
  @DisplayName("once every member has left, joining again is refused instead of handing out a closed store")
  void noJoinAfterTheEnd() throws Exception {
    SharedIdempotencyStore shared = new SharedIdempotencyStore();
    Context context = vertx.getOrCreateContext();
    shared.join(() -> newStore(context));
    CompletableFuture<Void> left = new CompletableFuture<>();
    onContext(context, () -> shared.leave(context).onSuccess(v -> left.complete(null)));
    left.get(5, TimeUnit.SECONDS);

    assertThatThrownBy(() -> shared.join(() -> newStore(context))).isInstanceOf(IllegalStateException.class);
  }

  private static void onContext(Context context, Runnable action) {
    context.runOnContext(v -> action.run());
  }
}
