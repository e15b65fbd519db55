package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.Http;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The write queue in front of a database that stops answering: bounded in size and in waiting time. */
class GroupCommitTest {
  private Vertx vertx;
  private Context context;
  /** The groups sent, and the promise each waits on: the test plays the database. */
  private final List<List<Integer>> sent = new CopyOnWriteArrayList<>();
  private final List<Promise<List<Integer>>> answers = new CopyOnWriteArrayList<>();

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
    context = vertx.getOrCreateContext();
  }

  @AfterEach
  void stop() {
    Http.await(vertx.close());
  }

  private GroupCommit<Integer, Integer> queue(int maxQueued, Duration maxWait) {
    return new GroupCommit<>(context, 256, 1, group -> {
      Promise<List<Integer>> answer = Promise.promise();
      sent.add(group);
      answers.add(answer);
      return answer.future();
    }, failure -> false, maxQueued, maxWait);
  }

  private List<Future<Integer>> submitAll(GroupCommit<Integer, Integer> queue, int from, int to) {
    Promise<List<Future<Integer>>> submitted = Promise.promise();
    context.runOnContext(v -> {
      List<Future<Integer>> futures = new ArrayList<>();
      for (int i = from; i < to; i++) {
        futures.add(queue.submit(i));
      }
      submitted.complete(futures);
    });
    return Http.await(submitted.future());
  }

  @Test
  @DisplayName("writes that waited past their deadline behind a group the database never answered fail as not sent, and are never sent")
  void overdueWritesFailUnsent() throws Exception {
    // A deadline of 1 s: the fresh write must still be within it when the first group is answered
    // below, after the checks, on a loaded machine too.
    GroupCommit<Integer, Integer> queue = queue(1_000, Duration.ofMillis(1_000));
    List<Future<Integer>> first = submitAll(queue, 0, 1); // goes out at once, and hangs
    List<Future<Integer>> waiting = submitAll(queue, 1, 11);
    Thread.sleep(1_100);
    List<Future<Integer>> fresh = submitAll(queue, 11, 12); // its turn checks the deadlines

    for (Future<Integer> w : waiting) {
      Throwable failure = Http.await(w.transform(done -> Future.succeededFuture(done.cause())));
      assertThat(failure).isInstanceOf(GroupCommit.NotSent.class);
    }
    assertThat(fresh.get(0).isComplete()).as("a write within its deadline still waits").isFalse();
    context.runOnContext(v -> answers.get(0).complete(List.of(0)));
    assertThat(Http.await(first.get(0))).isZero();
    waitFor(() -> sent.size() == 2);
    assertThat(sent.get(1)).as("the next group holds only the write still within its deadline").containsExactly(11);
  }

  @Test
  @DisplayName("past maxQueued waiting writes, a new write fails at once as not sent")
  void fullQueueRefuses() {
    GroupCommit<Integer, Integer> queue = queue(3, Duration.ofSeconds(30));
    submitAll(queue, 0, 1); // in flight
    List<Future<Integer>> waiting = submitAll(queue, 1, 5);
    assertThat(waiting.subList(0, 3)).allSatisfy(w -> assertThat(w.isComplete()).isFalse());
    Throwable refused = Http.await(waiting.get(3).transform(done -> Future.succeededFuture(done.cause())));
    assertThat(refused).isInstanceOf(GroupCommit.NotSent.class);
  }

  private static void waitFor(java.util.function.BooleanSupplier condition) throws InterruptedException {
    for (int i = 0; i < 100 && !condition.getAsBoolean(); i++) {
      Thread.sleep(20);
    }
    assertThat(condition.getAsBoolean()).isTrue();
  }
}
