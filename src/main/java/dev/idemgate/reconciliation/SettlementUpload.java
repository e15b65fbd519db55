package dev.idemgate.reconciliation;

import dev.idemgate.http.ApiProblem;
import dev.idemgate.http.ErrorCode;
import io.vertx.core.Future;
import io.vertx.core.Promise;
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
 * <p>All callbacks run on the caller's event loop (the request's and the file's context), so the
 * counters need no locking.
 */
final class SettlementUpload {
  private static final Logger log = LoggerFactory.getLogger(SettlementUpload.class);

  private final ReadStream<Buffer> body;
  private final WriteStream<Buffer> file;
  private final long maxBytes;
  private final Long declaredLength;
  private final Promise<Long> done = Promise.promise();
  private long received;
  private long written;
  private int writesPending;
  private boolean ended;
  private boolean closing;
  private Throwable failure;

  private SettlementUpload(ReadStream<Buffer> body, WriteStream<Buffer> file, long maxBytes, Long declaredLength) {
    this.body = body;
    this.file = file;
    this.maxBytes = maxBytes;
    this.declaredLength = declaredLength;
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
    return new SettlementUpload(body, file, maxBytes, declaredLength).start();
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

  private void chunk(Buffer chunk) {
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
      file.drainHandler(v -> {
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
