package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.http.ApiProblem;
import dev.idemgate.http.ErrorCode;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.streams.ReadStream;
import io.vertx.core.streams.WriteStream;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** An upload is stored whole or refused: a lost write or a failed close is never a file to reconcile. */
class SettlementUploadTest {
  private final Vertx vertx = Vertx.vertx();

  @AfterEach
  void close() {
    vertx.close().await();
  }

  @Test
  @DisplayName("a body written and closed whole is stored, and its size returned")
  void storedWhole() throws Exception {
    Disk disk = new Disk(Long.MAX_VALUE, false);
    assertThat(store(disk, 1_000, 30L)).isEqualTo(30L);
    assertThat(disk.bytes).isEqualTo(30);
    assertThat(disk.closed).isTrue();
  }

  @Test
  @DisplayName("a write that fails (disk full) fails the upload with a 500 problem, although the body arrived whole")
  void writeFails() {
    Disk disk = new Disk(15, false);
    assertThat(failure(disk, 30L)).satisfies(p -> assertThat(p.code()).isEqualTo(ErrorCode.INTERNAL_ERROR));
    assertThat(disk.closed).isTrue();
  }

  @Test
  @DisplayName("a close that fails fails the upload with a 500 problem")
  void closeFails() {
    Disk disk = new Disk(Long.MAX_VALUE, true);
    assertThat(failure(disk, 30L).code()).isEqualTo(ErrorCode.INTERNAL_ERROR);
  }

  @Test
  @DisplayName("a body shorter than its Content-Length is not stored as whole")
  void shorterThanDeclared() {
    assertThat(failure(new Disk(Long.MAX_VALUE, false), 40L).code()).isEqualTo(ErrorCode.INTERNAL_ERROR);
  }

  @Test
  @DisplayName("a body that stops arriving fails the upload with 408 once nothing of it came for the silence limit; the file is closed")
  void silentBodyTimesOut() throws Exception {
    Disk disk = new Disk(Long.MAX_VALUE, false);
    Body body = new Body(List.of("aaaaaaaaaa"), false); // one chunk, then nothing: no end
    Promise<Long> stored = Promise.promise();
    long start = System.nanoTime();
    vertx.runOnContext(v -> SettlementUpload.store(body, disk, 1_000, 30L, vertx, 200).onComplete(stored));
    Throwable failure = stored.future().toCompletionStage().toCompletableFuture()
        .handle((bytes, e) -> e).get(10, TimeUnit.SECONDS);
    assertThat(failure).isInstanceOf(ApiProblem.class);
    assertThat(((ApiProblem) failure).code()).isEqualTo(ErrorCode.REQUEST_TIMEOUT);
    assertThat((System.nanoTime() - start) / 1_000_000).isGreaterThanOrEqualTo(200);
    assertThat(disk.closed).isTrue();
  }

  @Test
  @DisplayName("a body paused while the disk catches up is not silent: it is stored whole though the pause outlasts the silence limit")
  void pauseForTheDiskIsNoSilence() throws Exception {
    Disk disk = new Disk(Long.MAX_VALUE, false);
    disk.full = true; // every write fills the queue until the disk drains, 600 ms later
    Body body = new Body(List.of("aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"), true);
    Promise<Long> stored = Promise.promise();
    vertx.runOnContext(v -> {
      SettlementUpload.store(body, disk, 1_000, 30L, vertx, 200).onComplete(stored);
      vertx.setTimer(600, id -> {
        disk.full = false;
        disk.drain.handle(null);
      });
    });
    assertThat(stored.future().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)).isEqualTo(30L);
  }

  private ApiProblem failure(Disk disk, Long declared) {
    try {
      store(disk, 1_000, declared);
    } catch (ExecutionException e) {
      assertThat(e.getCause()).isInstanceOf(ApiProblem.class);
      return (ApiProblem) e.getCause();
    } catch (Exception e) {
      throw new AssertionError(e);
    }
    throw new AssertionError("the upload was stored");
  }

  /** Three chunks of 10 bytes into {@code disk}, on an event loop as the routes do. */
  private Long store(Disk disk, long maxBytes, Long declared) throws Exception {
    Body body = new Body(List.of("aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"), true);
    Promise<Long> stored = Promise.promise();
    vertx.runOnContext(v -> SettlementUpload.store(body, disk, maxBytes, declared).onComplete(stored));
    return stored.future().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  /** A request body that sends its chunks once resumed, then ends (or, if told not to, sends nothing more). */
  private final class Body implements ReadStream<Buffer> {
    private final ArrayDeque<String> chunks;
    private final boolean ends;
    private Handler<Buffer> handler;
    private Handler<Void> end;
    private boolean paused = true;

    Body(List<String> chunks, boolean ends) {
      this.chunks = new ArrayDeque<>(chunks);
      this.ends = ends;
    }

    @Override
    public ReadStream<Buffer> exceptionHandler(Handler<Throwable> h) {
      return this;
    }

    @Override
    public ReadStream<Buffer> handler(Handler<Buffer> h) {
      handler = h;
      return this;
    }

    @Override
    public ReadStream<Buffer> pause() {
      paused = true;
      return this;
    }

    @Override
    public ReadStream<Buffer> resume() {
      paused = false;
      while (!paused && !chunks.isEmpty() && handler != null) {
        handler.handle(Buffer.buffer(chunks.poll()));
      }
      if (chunks.isEmpty() && ends && end != null) {
        Handler<Void> last = end;
        end = null;
        last.handle(null);
      }
      return this;
    }

    @Override
    public ReadStream<Buffer> fetch(long amount) {
      return resume();
    }

    @Override
    public ReadStream<Buffer> endHandler(Handler<Void> h) {
      end = h;
      return this;
    }
  }

  /** A file that takes {@code room} bytes, then fails every write as a full disk does. */
  private static final class Disk implements WriteStream<Buffer> {
    private final long room;
    private final boolean closeFails;
    long bytes;
    boolean closed;
    /** Whether the write queue reads as full, until {@link #drain} is called. */
    boolean full;
    Handler<Void> drain;

    Disk(long room, boolean closeFails) {
      this.room = room;
      this.closeFails = closeFails;
    }

    @Override
    public WriteStream<Buffer> exceptionHandler(Handler<Throwable> h) {
      return this;
    }

    @Override
    public Future<Void> write(Buffer data) {
      if (bytes + data.length() > room) {
        return Future.failedFuture(new IOException("No space left on device"));
      }
      bytes += data.length();
      return Future.succeededFuture();
    }

    @Override
    public Future<Void> end() {
      closed = true;
      return closeFails ? Future.failedFuture(new IOException("Input/output error")) : Future.succeededFuture();
    }

    @Override
    public WriteStream<Buffer> setWriteQueueMaxSize(int maxSize) {
      return this;
    }

    @Override
    public boolean writeQueueFull() {
      return full;
    }

    @Override
    public WriteStream<Buffer> drainHandler(Handler<Void> h) {
      drain = h;
      return this;
    }
  }
}
