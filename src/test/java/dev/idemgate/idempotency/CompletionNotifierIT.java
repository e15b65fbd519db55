package dev.idemgate.idempotency;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.FaultProxy;
import dev.idemgate.support.RespCommand;
import dev.idemgate.support.ThrowawayRedis;
import dev.idemgate.support.ThrowawayRedisCluster;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.redis.client.ProtocolVersion;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisClientType;
import io.vertx.redis.client.RedisOptions;
import io.vertx.redis.client.RedisReplicas;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The completion notifier against a real Redis whose connections a FaultProxy freezes (a hung peer
 * that keeps them open while new ones pass).
 */
class CompletionNotifierIT {
  private static final long TIMEOUT_MS = 200;
  /** Shorter than the gateway's (four Redis deadlines, at least 3 s), so that the tests run quicker. */
  private static final long KEEP_ALIVE_DEADLINE_MS = 1_000;

  @ParameterizedTest(name = "{0}")
  @EnumSource(value = ProtocolVersion.class, names = {"RESP2", "RESP3"})
  @DisplayName("while a request waits, a quiet healthy subscriber connection is kept, one that hangs is left and "
      + "replaced with no new wait to notice it, and the wait is woken through the new one")
  void keepAliveLeavesHungSubscriberUnasked(ProtocolVersion protocol) throws Exception {
    try (Rig rig = new Rig(new VertxOptions())) {
      CompletionNotifier notifier = rig.notifier(new RedisOptions().setPreferredProtocolVersion(protocol), TIMEOUT_MS);
      CompletionNotifier.Wait quiet = subscribed(rig.context, notifier, "quiet");
      long connections = rig.proxy.acceptedConnections();

      Thread.sleep(3 * CompletionNotifier.KEEP_ALIVE_MS + TIMEOUT_MS); // three keep-alives confirmed
      assertThat(rig.proxy.acceptedConnections()).as("the quiet healthy connection was kept").isEqualTo(connections);
      assertThat(RespCommand.call(rig.redis.port(), "PUBSUB", "CHANNELS", "idemgate:notifier-alive:*"))
          .as("channels subscribed for the keep-alive").isEqualTo("1");
      CompletionNotifier.Wait other = subscribed(rig.context, notifier, "other");
      assertThat(publishUntilWoken(rig.redis.port(), "other", other)).as("a message still reaches its wait").isNotNull();
      assertThat(quiet.done().isComplete()).as("and only that wait").isFalse();

      long frozenAt = System.nanoTime();
      rig.proxy.freezeOpen(); // nothing new registers from here on: only the keep-alive can notice
      assertThat(publishUntilWoken(rig.redis.port(), "quiet", quiet)).as("woken through a new connection").isNotNull();
      System.out.printf("%s: the wait was woken %d ms after its subscriber connection hung%n", protocol,
          TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - frozenAt));
      assertThat(rig.proxy.acceptedConnections()).isGreaterThan(connections);
      closeWithin5s(rig.context, notifier);
    }
  }

  @Test
  @DisplayName("a Redis that answers slower than redis_timeout but within the keep-alive's deadline keeps its "
      + "subscriber connection, and completions still reach their waits through it")
  void keepAliveBearsWithASlowRedis() throws Exception {
    try (Rig rig = new Rig(new VertxOptions())) {
      CompletionNotifier notifier = rig.notifier(new RedisOptions(), TIMEOUT_MS);
      CompletionNotifier.Wait slow = subscribed(rig.context, notifier, "slow");
      long connections = rig.proxy.acceptedConnections();

      rig.proxy.latency(150); // each way: a keep-alive is confirmed after about 300 ms, past TIMEOUT_MS
      Thread.sleep(3 * CompletionNotifier.KEEP_ALIVE_MS + KEEP_ALIVE_DEADLINE_MS);
      assertThat(rig.proxy.acceptedConnections()).as("the slow connection was kept").isEqualTo(connections);
      assertThat(publishUntilWoken(rig.redis.port(), "slow", slow)).as("woken through it").isNotNull();
      assertThat(rig.proxy.acceptedConnections()).isEqualTo(connections);
      closeWithin5s(rig.context, notifier);
    }
  }

  @Test
  @DisplayName("a wait cancelled and registered again on its key before Redis confirms the SUBSCRIBE keeps the "
      + "healthy connection, and the new wait is woken")
  void waitRegisteredAgainBeforeConfirmation() throws Exception {
    try (Rig rig = new Rig(new VertxOptions())) {
      long timeoutMs = 1_000; // longer than TIMEOUT_MS: a cold start's slow first answers must not leave connections
      CompletionNotifier notifier = rig.notifier(new RedisOptions(), timeoutMs);
      CompletionNotifier.Wait warm = subscribed(rig.context, notifier, "warm"); // the connection is open
      long connections = rig.proxy.acceptedConnections();

      rig.proxy.latency(40); // each way: the confirmation comes well after the three calls below, well within timeoutMs
      CompletionNotifier.Wait again = on(rig.context, () -> {
        notifier.register("m", new IdempotencyKey("twice"), 30_000).cancel();
        return notifier.register("m", new IdempotencyKey("twice"), 30_000);
      });
      again.ready().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
      Thread.sleep(timeoutMs + 500); // past the first SUBSCRIBE's deadline
      assertThat(rig.proxy.acceptedConnections()).as("the healthy connection was kept").isEqualTo(connections);
      assertThat(publishUntilWoken(rig.redis.port(), "twice", again)).as("woken").isNotNull();
      closeWithin5s(rig.context, notifier);
    }
  }

  @Test
  @DisplayName("a second wait on a key is ready only once Redis confirmed the key's SUBSCRIBE: a completion "
      + "published as soon as it is ready reaches it, instead of being missed and the wait sat out")
  void secondWaitReadyOnlyOnceSubscribed() throws Exception {
    try (Rig rig = new Rig(new VertxOptions())) {
      long timeoutMs = 2_000; // well past the confirmation's delay below: no connection is left
      CompletionNotifier notifier = rig.notifier(new RedisOptions(), timeoutMs);
      subscribed(rig.context, notifier, "warm"); // the connection is open

      // Each way: the key's SUBSCRIBE is confirmed some 600 ms after it is sent. A waiter looks at
      // the record again once its wait is ready, and its twin's completion may come right after.
      rig.proxy.latency(300);
      CompletionNotifier.Wait second = on(rig.context, () -> {
        notifier.register("m", new IdempotencyKey("pair"), 30_000);
        return notifier.register("m", new IdempotencyKey("pair"), 30_000);
      });
      second.ready().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
      String receivers = RespCommand.call(rig.redis.port(), "PUBLISH",
          CompletionNotifier.channel("m", new IdempotencyKey("pair")), "done");
      assertThat(receivers).as("subscribers of the key's channel in Redis when the second wait was ready").isEqualTo("1");
      assertThat(second.done().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS))
          .as("woken by that completion").isNull();
      closeWithin5s(rig.context, notifier);
    }
  }

  @Test
  @DisplayName("a wait registered on a key while its subscriber connection is being replaced is ready only once the "
      + "new connection confirmed the key's SUBSCRIBE: a completion published as soon as it is ready reaches it")
  void waitDuringReplacementReadyOnlyOnceSubscribedAgain() throws Exception {
    try (Rig rig = new Rig(new VertxOptions())) {
      long timeoutMs = 5_000; // well past the new connection's slow handshake below: nothing is left
      CompletionNotifier notifier = rig.notifier(new RedisOptions(), timeoutMs);
      subscribed(rig.context, notifier, "lost-pair"); // the key's channel confirmed on the first connection

      // Each way, for the connection that replaces the first: its SUBSCRIBE is confirmed some 600 ms
      // after it is sent. The first was opened just now, so its replacement waits up to RECONNECT_MS.
      rig.proxy.latency(300);
      assertThat(rig.proxy.cutAll()).as("the subscriber connection was cut").isPositive();
      Thread.sleep(200); // the notifier has seen it go
      CompletionNotifier.Wait second = on(rig.context, () -> notifier.register("m", new IdempotencyKey("lost-pair"), 30_000));
      second.ready().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      String receivers = RespCommand.call(rig.redis.port(), "PUBLISH",
          CompletionNotifier.channel("m", new IdempotencyKey("lost-pair")), "done");
      assertThat(receivers).as("subscribers of the key's channel in Redis when the wait registered during the "
          + "replacement was ready").isEqualTo("1");
      assertThat(second.done().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS))
          .as("woken by that completion").isNull();
      closeWithin5s(rig.context, notifier);
    }
  }

  @Test
  @DisplayName("in Redis Cluster there is no keep-alive (it would test a master at random): a quiet subscriber "
      + "connection is kept, and a completion wakes the wait")
  void noKeepAliveInCluster() throws Exception {
    Vertx vertx = Vertx.vertx();
    try (ThrowawayRedisCluster cluster = ThrowawayRedisCluster.start()) {
      Context context = vertx.getOrCreateContext();
      RedisOptions options = new RedisOptions().setType(RedisClientType.CLUSTER).setUseReplicas(RedisReplicas.NEVER)
          .setMaxPoolSize(2);
      cluster.masterPorts().forEach(port -> options.addConnectionString("redis://127.0.0.1:" + port));
      Redis client = Redis.createClient(vertx, options);
      // As ApiVerticle makes it for redis_mode cluster.
      CompletionNotifier notifier = on(context, () -> new CompletionNotifier(vertx, context, client, TIMEOUT_MS, 0));
      CompletionNotifier.Wait quiet = subscribed(context, notifier, "quiet");
      Set<String> subscribers = cluster.subscriberConnections();

      Thread.sleep(2 * CompletionNotifier.KEEP_ALIVE_MS + TIMEOUT_MS);
      assertThat(cluster.subscribedChannels("idemgate:notifier-alive:*")).as("keep-alive channels").isZero();
      assertThat(cluster.subscriberConnections()).as("no connection left and opened again").isEqualTo(subscribers);
      assertThat(publishUntilWoken(cluster.masterPorts().get(1), "quiet", quiet)).as("woken").isNotNull();
      closeWithin5s(context, notifier);
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("after its subscriber connection hangs, the notifier subscribes on a new one, again to the channels "
      + "still waited on, and wakes waits there, on its own event loop")
  void leavesHungSubscriber() throws Exception {
    // More event loops than the test uses, so that work moved off the owning loop shows as another thread.
    try (Rig rig = new Rig(new VertxOptions().setEventLoopPoolSize(8))) {
      CompletionNotifier notifier = rig.notifier(new RedisOptions(), TIMEOUT_MS);
      Thread loop = on(rig.context, Thread::currentThread);

      CompletionNotifier.Wait before = subscribed(rig.context, notifier, "before");

      rig.proxy.freezeOpen();
      CompletionNotifier.Wait after = subscribed(rig.context, notifier, "after");

      assertThat(publishUntilWoken(rig.redis.port(), "after", after)).as("the new wait woken on the owning loop").isSameAs(loop);
      assertThat(publishUntilWoken(rig.redis.port(), "before", before))
          .as("the wait subscribed before the hang, subscribed again on the new connection").isSameAs(loop);
    }
  }

  @Test
  @DisplayName("a subscriber connection lost while someone waits is replaced, again and again while Redis refuses "
      + "connections, and the wait is woken once Redis is back")
  void replacesLostSubscriber() throws Exception {
    try (Rig rig = new Rig(new VertxOptions())) {
      CompletionNotifier notifier = rig.notifier(new RedisOptions(), TIMEOUT_MS);
      CompletionNotifier.Wait wait = subscribed(rig.context, notifier, "lost");

      rig.proxy.refuse();
      assertThat(rig.proxy.cutAll()).as("the subscriber connection was cut").isPositive();
      Thread.sleep(2 * CompletionNotifier.RECONNECT_MS + 500); // replacements refused, tried again
      rig.proxy.pass();

      assertThat(publishUntilWoken(rig.redis.port(), "lost", wait)).as("woken through a new connection").isNotNull();
      closeWithin5s(rig.context, notifier);
    }
  }

  /**
   * Publishes the key's completion every 20 ms until the wait is woken (a resubscription may still
   * be on its way, and the frozen connection still counts as a subscriber in Redis), for at most
   * 10 s; the thread that woke it.
   */
  private static Thread publishUntilWoken(int redisPort, String key, CompletionNotifier.Wait wait)
      throws Exception {
    CompletableFuture<Thread> wokenOn = new CompletableFuture<>();
    wait.done().onComplete(done -> wokenOn.complete(Thread.currentThread()));
    String channel = CompletionNotifier.channel("m", new IdempotencyKey(key));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!wokenOn.isDone() && System.nanoTime() < deadline) {
      RespCommand.call(redisPort, "PUBLISH", channel, "done");
      Thread.sleep(20);
    }
    return wokenOn.get(1, TimeUnit.SECONDS);
  }

  /**
   * A test's own Redis, a FaultProxy in front of it, and a Vert.x whose context the notifiers run on;
   * closed in the order the tests closed them by hand: the proxy, the Redis, then Vert.x.
   */
  private static final class Rig implements AutoCloseable {
    final ThrowawayRedis redis;
    final FaultProxy proxy;
    final Vertx vertx;
    final Context context;

    Rig(VertxOptions options) {
      redis = ThrowawayRedis.start();
      try {
        proxy = FaultProxy.start("127.0.0.1", redis.port());
      } catch (RuntimeException e) {
        redis.close();
        throw e;
      }
      vertx = Vertx.vertx(options);
      context = vertx.getOrCreateContext();
    }

    /** A notifier on {@link #context} whose client, with {@code options}, goes through the proxy. */
    CompletionNotifier notifier(RedisOptions options, long timeoutMs) throws Exception {
      // As small a pool as the gateway's subscriber client.
      Redis client = Redis.createClient(vertx,
          options.setConnectionString("redis://127.0.0.1:" + proxy.port()).setMaxPoolSize(2));
      return on(context, () -> new CompletionNotifier(vertx, context, client, timeoutMs, KEEP_ALIVE_DEADLINE_MS));
    }

    @Override
    public void close() throws Exception {
      try {
        proxy.close();
        redis.close();
      } finally {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      }
    }
  }

  /** A wait of 30 s on key {@code key} of merchant m, registered on the notifier's loop and subscribed. */
  private static CompletionNotifier.Wait subscribed(Context context, CompletionNotifier notifier, String key)
      throws Exception {
    CompletionNotifier.Wait wait = on(context, () -> notifier.register("m", new IdempotencyKey(key), 30_000));
    wait.ready().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
    return wait;
  }

  /** Closes {@code notifier} on its loop, and fails the test unless it is closed within 5 s. */
  private static void closeWithin5s(Context context, CompletionNotifier notifier) throws Exception {
    on(context, notifier::close).toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
  }

  private static <T> T on(Context context, Supplier<T> work) throws Exception {
    CompletableFuture<T> result = new CompletableFuture<>();
    context.runOnContext(v -> result.complete(work.get()));
    return result.get(5, TimeUnit.SECONDS);
  }
}
