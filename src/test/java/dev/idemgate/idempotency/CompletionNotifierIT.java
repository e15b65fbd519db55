package dev.idemgate.idempotency;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.FaultProxy;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.ThrowawayRedis;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisOptions;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The completion notifier against a real Redis whose connections a FaultProxy freezes (a hung peer
 * that keeps them open while new ones pass).
 */
class CompletionNotifierIT {
  private static final long TIMEOUT_MS = 200;

  @Test
  @DisplayName("after its subscriber connection hangs, the notifier subscribes on a new one, again to the channels "
      + "still waited on, and wakes waits there, on its own event loop")
  void leavesHungSubscriber() throws Exception {
    // More event loops than the test uses, so that work moved off the owning loop shows as another thread.
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(8));
    try (ThrowawayRedis redis = ThrowawayRedis.start(); FaultProxy proxy = FaultProxy.start("127.0.0.1", redis.port())) {
      Context context = vertx.getOrCreateContext();
      Redis client = Redis.createClient(vertx, new RedisOptions()
          .setConnectionString("redis://127.0.0.1:" + proxy.port()).setMaxPoolSize(2));
      CompletionNotifier notifier = on(context, () -> new CompletionNotifier(vertx, context, client, TIMEOUT_MS));
      Thread loop = on(context, Thread::currentThread);

      CompletionNotifier.Wait before = on(context, () -> notifier.register("m", new IdempotencyKey("before"), 30_000));
      before.ready().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);

      proxy.freezeOpen();
      CompletionNotifier.Wait after = on(context, () -> notifier.register("m", new IdempotencyKey("after"), 30_000));
      after.ready().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);

      assertThat(publishUntilWoken(redis, "after", after)).as("the new wait woken on the owning loop").isSameAs(loop);
      assertThat(publishUntilWoken(redis, "before", before))
          .as("the wait subscribed before the hang, subscribed again on the new connection").isSameAs(loop);
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("a subscriber connection lost while someone waits is replaced, again and again while Redis refuses "
      + "connections, and the wait is woken once Redis is back")
  void replacesLostSubscriber() throws Exception {
    Vertx vertx = Vertx.vertx();
    try (ThrowawayRedis redis = ThrowawayRedis.start(); FaultProxy proxy = FaultProxy.start("127.0.0.1", redis.port())) {
      Context context = vertx.getOrCreateContext();
      Redis client = Redis.createClient(vertx, new RedisOptions()
          .setConnectionString("redis://127.0.0.1:" + proxy.port()).setMaxPoolSize(2));
      CompletionNotifier notifier = on(context, () -> new CompletionNotifier(vertx, context, client, TIMEOUT_MS));
      CompletionNotifier.Wait wait = on(context, () -> notifier.register("m", new IdempotencyKey("lost"), 30_000));
      wait.ready().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);

      proxy.refuse();
      assertThat(proxy.cutAll()).as("the subscriber connection was cut").isPositive();
      Thread.sleep(2 * CompletionNotifier.RECONNECT_MS + 500); // replacements refused, tried again
      proxy.pass();

      assertThat(publishUntilWoken(redis, "lost", wait)).as("woken through a new connection").isNotNull();
      on(context, notifier::close).toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  /**
   * Publishes the key's completion every 20 ms until the wait is woken (a resubscription may still
   * be on its way, and the frozen connection still counts as a subscriber in Redis), for at most
   * 5 s; the thread that woke it.
   */
  private static Thread publishUntilWoken(ThrowawayRedis redis, String key, CompletionNotifier.Wait wait)
      throws Exception {
    CompletableFuture<Thread> wokenOn = new CompletableFuture<>();
    wait.done().onComplete(done -> wokenOn.complete(Thread.currentThread()));
    String channel = CompletionNotifier.channel("m", new IdempotencyKey(key));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (!wokenOn.isDone() && System.nanoTime() < deadline) {
      RespCommand.call(redis.port(), "PUBLISH", channel, "done");
      Thread.sleep(20);
    }
    return wokenOn.get(1, TimeUnit.SECONDS);
  }

  private static <T> T on(Context context, Supplier<T> work) throws Exception {
    CompletableFuture<T> result = new CompletableFuture<>();
    context.runOnContext(v -> result.complete(work.get()));
    return result.get(5, TimeUnit.SECONDS);
  }
}
