package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import dev.idemgate.support.TestGateway;
import dev.idemgate.support.Waits;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import io.vertx.redis.client.RedisOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** Commands of one event-loop turn go out as one group; each still gets its own answer. Real Redis. */
class PipelinedRedisIT {
  private static Vertx vertx;
  private static Redis client;
  private static Context context;
  private static PipelinedRedis pipeline;
  private static final String PREFIX = "idemgate-test:pipeline:" + UUID.randomUUID() + ":";

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
    client = Redis.createClient(vertx, TestGateway.redisUrl());
    context = vertx.getOrCreateContext();
    pipeline = new PipelinedRedis(client, context);
  }

  @AfterAll
  static void stop() {
    Http.await(onLoop(() -> pipeline.close()));
    Http.await(client.close());
    Http.await(vertx.close());
  }

  /** Runs {@code call} on the pipeline's event loop, as its verticle would. */
  private static <T> Future<T> onLoop(java.util.function.Supplier<Future<T>> call) {
    Promise<T> done = Promise.promise();
    context.runOnContext(v -> call.get().onComplete(done));
    return done.future();
  }

  @Test
  @DisplayName("200 commands sent in one turn each get their own answer, in order, a nil reply as null")
  void oneTurnManyAnswers() {
    List<Response> answers = Http.await(onLoop(() -> {
      List<Future<Response>> sent = new ArrayList<>();
      for (int i = 0; i < 100; i++) {
        String key = PREFIX + "k" + i;
        sent.add(pipeline.send(Request.cmd(Command.SET).arg(key).arg("v" + i).arg("NX").arg("GET").arg("PX").arg(10_000)));
        sent.add(pipeline.send(Request.cmd(Command.SET).arg(key).arg("other").arg("NX").arg("GET").arg("PX").arg(10_000)));
      }
      return Future.all(sent).map(all -> {
        List<Response> list = new ArrayList<>();
        sent.forEach(f -> list.add(f.result()));
        return list;
      });
    }));
    for (int i = 0; i < 100; i++) {
      assertThat(answers.get(2 * i)).as("first SET NX of key %d claims it", i).isNull();
      assertThat(answers.get(2 * i + 1).toString()).as("second SET NX of key %d reads the first", i).isEqualTo("v" + i);
    }
  }

  @Test
  @DisplayName("an error reply fails the commands of its group, and the next turn works on a new connection")
  void errorFailsItsGroupOnly() {
    String text = PREFIX + "text";
    Http.await(onLoop(() -> pipeline.send(Request.cmd(Command.SET).arg(text).arg("not a number").arg("PX").arg(10_000))));

    List<Future<Response>> group = Http.await(onLoop(() -> {
      List<Future<Response>> sent = List.of(
          pipeline.send(Request.cmd(Command.GET).arg(text)),
          pipeline.send(Request.cmd(Command.INCR).arg(text)));
      return Future.join(sent).otherwiseEmpty().map(v -> sent);
    }));
    assertThat(group).allSatisfy(f -> assertThat(f.failed()).isTrue());

    Response next = Http.await(onLoop(() -> pipeline.send(Request.cmd(Command.GET).arg(text))));
    assertThat(next.toString()).isEqualTo("not a number");
    List<Response> both = Http.await(onLoop(() -> pipeline.batch(List.of(
        Request.cmd(Command.SET).arg(PREFIX + "b").arg("1").arg("PX").arg(10_000),
        Request.cmd(Command.GET).arg(PREFIX + "b")))));
    assertThat(both.get(1).toString()).isEqualTo("1");
  }

  /** The read-idle close of these tests' clients: short, so that a round takes well under a second. */
  private static final Duration READ_IDLE = Duration.ofMillis(400);

  @Test
  @DisplayName("a command sent as its connection's read-idle close comes goes on a new connection and is"
      + " answered; one sent sooner reuses the connection")
  void aConnectionQuietForTheReuseLimitIsLeft() {
    Redis closingIdle = Redis.createClient(vertx, RedisClients.closingIdleConnections(
        new RedisOptions().setConnectionString(TestGateway.redisUrl()).setMaxPoolSize(4), READ_IDLE));
    PipelinedRedis quietOnes = new PipelinedRedis(closingIdle, context, false, RedisClients.reuseLimit(READ_IDLE));
    try {
      // Without the limit, 5 to 15 of 30 commands sent 0-2 ms before the read-idle close failed,
      // unsent (ClosedChannelException) or with the reply lost (CONNECTION_CLOSED).
      List<Long> late = clientIdsAfterQuiet(quietOnes, READ_IDLE.toMillis() - 1, 15);
      late.addAll(clientIdsAfterQuiet(quietOnes, READ_IDLE.toMillis(), 15));
      assertThat(late).as("Redis client ids of commands sent as the read-idle close came: each on a new"
          + " connection").doesNotContainNull().doesNotHaveDuplicates();

      List<Long> sooner = clientIdsAfterQuiet(quietOnes, RedisClients.reuseLimit(READ_IDLE).toMillis() / 4, 10);
      assertThat(sooner).as("client ids of commands sent well within the reuse limit").doesNotContainNull();
      assertThat(Set.copyOf(sooner)).as("their connection, the last of the late ones")
          .containsExactly(late.get(late.size() - 1));
    } finally {
      Http.await(onLoop(quietOnes::close));
      Http.await(closingIdle.close());
    }
  }

  @Test
  @DisplayName("a pooled client does not lend a connection about to be closed for being idle")
  void aPooledClientDoesNotLendAConnectionAboutToClose() {
    Redis closingIdle = Redis.createClient(vertx, RedisClients.closingIdleConnections(
        new RedisOptions().setConnectionString(TestGateway.redisUrl()).setMaxPoolSize(1), READ_IDLE));
    try {
      List<String> failures = new ArrayList<>();
      for (long quietMs : new long[] {READ_IDLE.toMillis() - 1, READ_IDLE.toMillis()}) {
        Waits.afterQuiet(context, quietMs, 15, () -> closingIdle.send(Request.cmd(Command.PING))).stream()
            .filter(AsyncResult::failed).forEach(ping -> failures.add(quietMs + " ms: " + ping.cause()));
      }
      assertThat(failures).as("PINGs that failed, sent as the pooled connection's read-idle close came").isEmpty();
    } finally {
      Http.await(closingIdle.close());
    }
  }

  /** {@code times} times, {@code quietMs} after the last answer: CLIENT ID on {@code pipeline}, null if it failed. */
  private static List<Long> clientIdsAfterQuiet(PipelinedRedis pipeline, long quietMs, int times) {
    List<Long> ids = new ArrayList<>();
    Waits.afterQuiet(context, quietMs, times, () -> pipeline.send(Request.cmd(Command.CLIENT).arg("ID")))
        .forEach(answer -> ids.add(answer.succeeded() ? answer.result().toLong() : null));
    return ids;
  }

  @Test
  @DisplayName("a command's timeout fires on the owning event loop, not on a foreign thread")
  void timeoutFiresOnTheOwningLoop() throws Exception {
    // A server that accepts and never answers: the command can only end by its timeout.
    try (java.net.ServerSocket silent = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
      Redis mute = Redis.createClient(vertx, "redis://127.0.0.1:" + silent.getLocalPort());
      PipelinedRedis toSilence = new PipelinedRedis(mute, context);
      Thread loop = Http.await(onLoop(() -> Future.succeededFuture(Thread.currentThread())));
      Promise<Thread> failedOn = Promise.promise();
      context.runOnContext(v -> toSilence.send(Request.cmd(Command.PING)).timeout(200, java.util.concurrent.TimeUnit.MILLISECONDS)
          .onComplete(done -> failedOn.complete(done.failed() ? Thread.currentThread() : null)));
      assertThat(Http.await(failedOn.future())).as("the thread a command's timeout failure ran on").isSameAs(loop);
      Promise<Thread> batchFailedOn = Promise.promise();
      context.runOnContext(v -> toSilence.batch(List.of(Request.cmd(Command.PING), Request.cmd(Command.PING)))
          .timeout(200, java.util.concurrent.TimeUnit.MILLISECONDS)
          .onComplete(done -> batchFailedOn.complete(done.failed() ? Thread.currentThread() : null)));
      assertThat(Http.await(batchFailedOn.future())).as("the thread a batch's timeout failure ran on").isSameAs(loop);
      Http.await(onLoop(toSilence::close));
      Http.await(mute.close());
    }
  }
}
