package dev.idemgate.reconciliation;

import dev.idemgate.http.ApiProblem;
import dev.idemgate.http.ErrorCode;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.streams.ReadStream;
import io.vertx.core.streams.WriteStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Stores an uploaded settlement file, with back-pressure, whole or not at all. A file cut short by a
 * failed write (disk full, an I/O error) or a failed close would otherwise be reconciled as if whole:
 * every payment of its lost tail reported MISSING_IN_SETTLEMENT in a COMPLETED run. So every write's
 * outcome is awaited, the file is closed before the upload counts as stored, and the bytes written
 * must be the bytes received (and the Content-Length, when given).
 *
 * <p>A body that stops arriving fails the upload with 408 once nothing of it came for the silence
 * limit, as a payment body that stops gets 408: else only the management port's idle timeout would
 * end it, a minute later and without an answer. A file of up to {@code max_upload_mib} may take
 * longer than that limit as a whole, so the limit is on silence, not on the whole body; and the
 * time the body is paused because the disk is behind is no silence of the client's.
 *
 * <p>All callbacks run on the caller's event loop (the request's and the file's context), so the
 * counters need no locking.
 */
final class SettlementUpload {
  private static final Logger log = LoggerFactory.getLogger(SettlementUpload.class);

  private final ReadStream<Buffer> body;
  private final WriteStream<Buffer> file;
  private final long maxBytes;
  private final Long declaredLength;
  private final long silenceLimitNanos;
  private final Promise<Long> done = Promise.promise();
  private long received;
  private long written;
  private int writesPending;
  private boolean ended;
  private boolean closing;
  private Throwable failure;
  /** When the last chunk came, or the body was last resumed after the disk caught up ({@link System#nanoTime()}). */
  private long lastHeard;
  /** Paused by this upload until the file's write queue drains: the client is not silent then. */
  private boolean waitingForDisk;

  private SettlementUpload(ReadStream<Buffer> body, WriteStream<Buffer> file, long maxBytes, Long declaredLength,
      long silenceLimitMillis) {
    this.body = body;
    this.file = file;
    this.maxBytes = maxBytes;
    this.declaredLength = declaredLength;
    this.silenceLimitNanos = silenceLimitMillis * 1_000_000L;
  }

  /**
   * Streams {@code body} (paused) into {@code file} and closes the file ({@code end()}). Succeeds with
   * the bytes stored once every write and the close succeeded; fails with 413 past {@code maxBytes},
   * with a 500 {@link ApiProblem} when the file could not be stored whole, or with the body's own
   * failure. The file is closed in every case.
   *
   * @param declaredLength the request's Content-Length, or null without one
   */
  static Future<Long> store(ReadStream<Buffer> body, WriteStream<Buffer> file, long maxBytes, Long declaredLength) {
    return new SettlementUpload(body, file, maxBytes, declaredLength, 0).start();
  }

  /**
   * As {@link #store(ReadStream, WriteStream, long, Long)}, and fails with a 408 {@link ApiProblem}
   * once nothing of the body arrived for {@code silenceLimitMillis}, checked by a timer of
   * {@code vertx} a tenth of the limit apart (10 ms to 1 s).
   */
  static Future<Long> store(ReadStream<Buffer> body, WriteStream<Buffer> file, long maxBytes, Long declaredLength,
      Vertx vertx, long silenceLimitMillis) {
    SettlementUpload upload = new SettlementUpload(body, file, maxBytes, declaredLength, silenceLimitMillis);
    upload.lastHeard = System.nanoTime();
    long timer = vertx.setPeriodic(Math.max(10, Math.min(1_000, silenceLimitMillis / 10)), id -> upload.checkSilence());
    return upload.start().andThen(stored -> vertx.cancelTimer(timer));
  }

  private static ApiProblem silent(long silenceLimitMillis) {
    return new ApiProblem(ErrorCode.REQUEST_TIMEOUT, "nothing of the settlement file arrived for " + silenceLimitMillis
        + " ms; nothing was stored: send the file again");
  }

  static ApiProblem tooLarge() {
    return new ApiProblem(ErrorCode.PAYLOAD_TOO_LARGE,
        "the settlement file is larger than max_upload_mib of the reconciliation settings");
  }

  private static ApiProblem notStored() {
    return new ApiProblem(ErrorCode.INTERNAL_ERROR,
        "the settlement file could not be stored whole on the gateway (disk full or an I/O error): nothing was reconciled");
  }

  private Future<Long> start() {
    file.exceptionHandler(e -> fail(storeFailed("a write failed", e)));
    body.handler(this::chunk);
    body.exceptionHandler(this::fail);
    body.endHandler(v -> {
      ended = true;
      closeWhenWritten();
    });
    body.resume();
    return done.future();
  }

  private void checkSilence() {
    if (!ended && !waitingForDisk && failure == null && System.nanoTime() - lastHeard >= silenceLimitNanos) {
      fail(silent(silenceLimitNanos / 1_000_000));
    }
  }

  private void chunk(Buffer chunk) {
    lastHeard = System.nanoTime();
    received += chunk.length();
    if (received > maxBytes) {
      fail(tooLarge());
      return;
    }
    int length = chunk.length();
    writesPending++;
    file.write(chunk).onComplete((ok, e) -> {
      writesPending--;
      if (e != null) {
        fail(storeFailed("a write failed", e));
      } else {
        written += length;
        closeWhenWritten();
      }
    });
    if (file.writeQueueFull()) {
      body.pause();
      waitingForDisk = true;
      file.drainHandler(v -> {
        waitingForDisk = false;
        lastHeard = System.nanoTime();
        if (failure == null) {
          body.resume();
        }
      });
    }
  }

  private void closeWhenWritten() {
    if (!ended || writesPending > 0 || closing || failure != null) {
      return;
    }
    closing = true;
    file.end().onComplete((ok, e) -> {
      if (e != null) {
        done.tryFail(storeFailed("the close failed", e));
      } else if (written != received || (declaredLength != null && written != declaredLength)) {
        log.warn("settlement upload not stored whole: {} bytes written of {} received (Content-Length {})",
            written, received, declaredLength);
        done.tryFail(notStored());
      } else {
        done.tryComplete(written);
      }
    });
  }

  /** The first failure wins; reading stops and the file is closed, its outcome no longer mattering. */
  private void fail(Throwable e) {
    if (failure != null) {
      return;
    }
    failure = e;
    body.handler(null);
    if (closing) {
      done.tryFail(e);
      return;
    }
    closing = true;
    file.end().onComplete((ok, ignored) -> done.tryFail(e));
  }

  private static ApiProblem storeFailed(String what, Throwable cause) {
    // The cause names the temporary file and the OS error, never the upload's content.
    log.warn("settlement upload could not be stored, {}: {}", what, cause.toString());
    return notStored();
  }
}
