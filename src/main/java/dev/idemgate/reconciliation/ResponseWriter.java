package dev.idemgate.reconciliation;

import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerResponse;
import java.io.IOException;
import java.io.Writer;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A {@link Writer} onto an HTTP response, for a report written on a worker thread (it blocks; never
 * use it on an event loop). Text goes out in chunks of {@link #CHUNK_CHARS} as it is written, and a
 * chunk is handed to the connection only once the one before has reached the socket, so a report of
 * any size holds about two chunks of the gateway's heap, and a client that stops reading holds the
 * worker thread, not memory, for at most {@link #WRITE_TIMEOUT_MS} per chunk. A report shorter than
 * one chunk goes out whole with a Content-Length, as before.
 *
 * <p>Once the first chunk is out the status is sent: a failure after that can only cut the response
 * short ({@link #abort()}: the HTTP/1.1 connection closed, the HTTP/2 stream reset), so that a client
 * never takes half a report for a whole one.
 */
final class ResponseWriter extends Writer {
  static final int CHUNK_CHARS = 64 * 1024;
  static final long WRITE_TIMEOUT_MS = 30_000;

  private final HttpServerResponse response;
  private final String contentType;
  private final StringBuilder pending = new StringBuilder();
  private Future<Void> lastWrite = Future.succeededFuture();
  private boolean started;

  ResponseWriter(HttpServerResponse response, String contentType) {
    this.response = response;
    this.contentType = contentType;
  }

  @Override
  public void write(char[] text, int offset, int length) throws IOException {
    pending.append(text, offset, length);
    sendFullChunks();
  }

  @Override
  public void write(String text, int offset, int length) throws IOException {
    pending.append(text, offset, offset + length);
    sendFullChunks();
  }

  @Override
  public void write(int c) throws IOException {
    pending.append((char) c);
    sendFullChunks();
  }

  /** Nothing: text goes out by the chunk, and the rest with {@link #finish()}. */
  @Override
  public void flush() {}

  /** Nothing: the response ends with {@link #finish()} or {@link #abort()}. */
  @Override
  public void close() {}

  /**
   * Whether the response's status has been handed to the connection (a first chunk, or the end):
   * from then on a failure can only {@link #abort()} it, not answer it with an error.
   */
  boolean started() {
    return started;
  }

  /** Sends what is left and ends the response; waits until it is written. */
  void finish() throws IOException {
    Buffer rest = Buffer.buffer(pending.toString());
    pending.setLength(0);
    if (!started) {
      response.putHeader(HttpHeaders.CONTENT_TYPE, contentType);
      started = true;
    }
    await(lastWrite);
    await(response.end(rest));
  }

  /** Cuts a response that has started short; one that has not is left for the caller to answer. */
  void abort() {
    if (started) {
      response.reset();
    }
  }

  private void sendFullChunks() throws IOException {
    while (pending.length() >= CHUNK_CHARS) {
      // A character outside the BMP is two chars: never cut between them.
      int cut = Character.isHighSurrogate(pending.charAt(CHUNK_CHARS - 1)) ? CHUNK_CHARS - 1 : CHUNK_CHARS;
      Buffer chunk = Buffer.buffer(pending.substring(0, cut));
      pending.delete(0, cut);
      if (!started) {
        response.putHeader(HttpHeaders.CONTENT_TYPE, contentType).setChunked(true);
        started = true;
      }
      await(lastWrite); // at most one chunk queued at the connection while the next is built
      lastWrite = response.write(chunk);
    }
  }

  private static void await(Future<Void> write) throws IOException {
    try {
      write.toCompletionStage().toCompletableFuture().get(WRITE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      throw new IOException("the report could not be sent: " + e.getCause().getMessage(), e.getCause());
    } catch (TimeoutException e) {
      throw new IOException("the client read nothing of the report for " + WRITE_TIMEOUT_MS + " ms");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while sending the report", e);
    }
  }
}
