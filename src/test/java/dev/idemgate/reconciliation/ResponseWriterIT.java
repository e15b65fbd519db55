package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** ResponseWriter between a real Vert.x server and client over loopback. */
class ResponseWriterIT {
  /** 11 chars, so that chunk boundaries fall at every place in it, also between the two chars of the emoji. */
  private static final String LINE = "ä€😀 lines\n";
  private static final int LINES = 6_000_000; // 66 M chars, 96 MB of UTF-8: far more than loopback buffers hold

  @Test
  @DisplayName("a streamed report waits for a client that reads nothing, holding a chunk or two, and arrives whole "
      + "once it reads, characters outside the BMP across chunk boundaries included; a short one keeps its "
      + "Content-Length")
  void streamsWithBackpressure() throws Exception {
    Vertx vertx = Vertx.vertx();
    AtomicLong charsWritten = new AtomicLong();
    CompletableFuture<Void> shortDone = new CompletableFuture<>();
    CompletableFuture<Void> longDone = new CompletableFuture<>();
    try {
      HttpServer server = vertx.createHttpServer().requestHandler(request -> new Thread(() -> {
        // A thread of its own, as the reconciliation workers are: the writer blocks.
        ResponseWriter out = new ResponseWriter(request.response(), "text/plain; charset=utf-8");
        boolean isShort = request.path().equals("/short");
        CompletableFuture<Void> writerDone = isShort ? shortDone : longDone;
        try {
          int lines = isShort ? 3 : LINES;
          for (int i = 0; i < lines; i++) {
            out.write(LINE);
            charsWritten.addAndGet(LINE.length());
          }
          out.finish();
          writerDone.complete(null);
        } catch (Exception e) {
          writerDone.completeExceptionally(e);
        }
      }).start()).listen(0).toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
      HttpClient client = vertx.createHttpClient();

      String[] shortOne = client.request(HttpMethod.GET, server.actualPort(), "127.0.0.1", "/short")
          .compose(r -> r.send()).compose(r -> r.body().map(body -> new String[] {r.getHeader("Content-Length"),
              body.toString()})).toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
      assertThat(shortOne[0]).isEqualTo(String.valueOf(LINE.repeat(3).getBytes(StandardCharsets.UTF_8).length));
      assertThat(shortOne[1]).isEqualTo(LINE.repeat(3));
      shortDone.get(5, TimeUnit.SECONDS);
      charsWritten.set(0);

      MessageDigest received = MessageDigest.getInstance("SHA-256");
      AtomicLong bytesReceived = new AtomicLong();
      CompletableFuture<Void> ended = new CompletableFuture<>();
      HttpClientResponse response = client.request(HttpMethod.GET, server.actualPort(), "127.0.0.1", "/long")
          .compose(r -> r.send().map(resp -> {
            resp.pause(); // read nothing yet
            resp.handler(chunk -> {
              received.update(chunk.getBytes());
              bytesReceived.addAndGet(chunk.length());
            });
            resp.endHandler(v -> ended.complete(null));
            return resp;
          })).toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
      assertThat(response.getHeader("Transfer-Encoding")).isEqualTo("chunked");
      Thread.sleep(2_000);
      long writtenWhilePaused = charsWritten.get();
      long total = (long) LINES * LINE.length();
      System.out.printf("while the client read nothing for 2 s the writer took %,d of %,d chars (%.1f %%)%n",
          writtenWhilePaused, total, 100.0 * writtenWhilePaused / total);
      assertThat(writtenWhilePaused).as("the writer waits for the client").isLessThan(total / 4);
      assertThat(longDone).isNotDone();

      response.resume();
      ended.get(60, TimeUnit.SECONDS);
      longDone.get(10, TimeUnit.SECONDS);
      MessageDigest expected = MessageDigest.getInstance("SHA-256");
      byte[] line = LINE.getBytes(StandardCharsets.UTF_8);
      for (int i = 0; i < LINES; i++) {
        expected.update(line);
      }
      assertThat(bytesReceived.get()).isEqualTo((long) LINES * line.length);
      assertThat(HexFormat.of().formatHex(received.digest())).as("every byte as written")
          .isEqualTo(HexFormat.of().formatHex(expected.digest()));
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }
}
