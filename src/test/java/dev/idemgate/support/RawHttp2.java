package dev.idemgate.support;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http2.DefaultHttp2FrameReader;
import io.netty.handler.codec.http2.DefaultHttp2FrameWriter;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2CodecUtil;
import io.netty.handler.codec.http2.Http2FrameAdapter;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2Settings;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

/**
 * An HTTP/2 client over a plain socket that sends exactly the frames a test tells it to, when it
 * tells it to, and writes down every frame the server sends as a line ("HEADERS 1 :status=201",
 * "GOAWAY last=3 error=0", "RST 5 error=7", "PING", "EOF"). It acknowledges SETTINGS and nothing
 * else: a PING stays unanswered until {@link #answerPings} is called, which is how a client that
 * has not yet read what the server sent behaves. Netty's own frame reader and writer make and read
 * the bytes; nothing here reacts to a frame the way a real client would, on purpose.
 */
public final class RawHttp2 implements AutoCloseable {
  private final Socket socket;
  private final OutputStream out;
  /** Only a context for Netty's frame writer and reader: whatever the writer writes lands here. */
  private final EmbeddedChannel frames = new EmbeddedChannel(new ChannelOutboundHandlerAdapter());
  private final DefaultHttp2FrameWriter writer = new DefaultHttp2FrameWriter();
  private final List<String> events = new CopyOnWriteArrayList<>();
  private final Thread readerThread;
  private volatile boolean answerPings;

  private RawHttp2(Socket socket) throws IOException {
    this.socket = socket;
    this.out = socket.getOutputStream();
    InputStream in = socket.getInputStream();
    readerThread = new Thread(() -> read(in), "raw-http2-reader");
    readerThread.setDaemon(true);
  }

  /** Connects with prior knowledge (h2c): the preface and an empty SETTINGS frame. */
  public static RawHttp2 connect(int port) throws IOException {
    RawHttp2 client = new RawHttp2(new Socket("127.0.0.1", port));
    client.preface();
    client.readerThread.start();
    return client;
  }

  /**
   * Connects over HTTP/1.1 and sends {@code request}, head and body, as given: one asking for h2c
   * with {@code Upgrade} (RFC 7540 §3.2). The first event is the answer's status line; once it is
   * {@code 101}, the preface and an empty SETTINGS frame follow, and the request's answer comes on
   * stream 1 as any other stream's.
   */
  public static RawHttp2 upgrade(int port, String request) throws IOException {
    RawHttp2 client = new RawHttp2(new Socket("127.0.0.1", port));
    client.out.write(request.getBytes(StandardCharsets.ISO_8859_1));
    client.out.flush();
    // Byte by byte up to the blank line: whatever follows it is HTTP/2, the reader's.
    InputStream in = client.socket.getInputStream();
    StringBuilder head = new StringBuilder();
    for (int b; head.indexOf("\r\n\r\n") < 0 && (b = in.read()) >= 0; ) {
      head.append((char) b);
    }
    client.events.add(head.toString().lines().findFirst().orElse("EOF"));
    if (head.toString().startsWith("HTTP/1.1 101 ")) {
      client.preface();
    }
    client.readerThread.start();
    return client;
  }

  /**
   * The preface and an empty SETTINGS frame, sent before the reader starts: the reader acknowledges
   * the server's SETTINGS as it reads them, and an acknowledgement ahead of the client's own
   * SETTINGS is a connection error to the server ("First received frame was SETTINGS frame but had
   * ACK flag set").
   */
  private void preface() throws IOException {
    send(Http2CodecUtil.connectionPrefaceBuf());
    write(ctx -> writer.writeSettings(ctx, new Http2Settings(), ctx.newPromise()));
  }

  /** The HEADERS of a POST, without END_STREAM: its body is to come in {@link #data}. */
  public void postHeaders(int streamId, String path, Map<String, String> headers) throws IOException {
    postHeaders(streamId, "http", path, headers);
  }

  /** As {@link #postHeaders(int, String, Map)}, with the {@code :scheme} given. */
  public void postHeaders(int streamId, String scheme, String path, Map<String, String> headers) throws IOException {
    requestHeaders(streamId, "POST", scheme, path, headers, false);
  }

  /** The HEADERS of a request; with {@code endStream} it has no body (a GET), else its body is to come in {@link #data}. */
  public void requestHeaders(int streamId, String method, String scheme, String path, Map<String, String> headers,
      boolean endStream) throws IOException {
    // Netty's own checks of header names are off: a test sends what a careless client would.
    Http2Headers h2 = new DefaultHttp2Headers(false).method(method).scheme(scheme).authority("127.0.0.1").path(path);
    headers.forEach((name, value) -> h2.add(name.toLowerCase(java.util.Locale.ROOT), value));
    write(ctx -> writer.writeHeaders(ctx, streamId, h2, 0, endStream, ctx.newPromise()));
  }

  /** One DATA frame that ends the stream. */
  public void data(int streamId, String body) throws IOException {
    write(ctx -> writer.writeData(ctx, streamId, Unpooled.copiedBuffer(body, StandardCharsets.UTF_8), 0, true,
        ctx.newPromise()));
  }

  /** From now on PINGs are acknowledged as they arrive. */
  public void answerPings() {
    answerPings = true;
  }

  /** Every frame the server sent so far, as lines. */
  public List<String> events() {
    return List.copyOf(events);
  }

  /** Waits until a frame line matches, or throws after {@code timeout}. */
  public String await(Predicate<String> line, Duration timeout) throws InterruptedException {
    long ends = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < ends) {
      for (String event : events) {
        if (line.test(event)) {
          return event;
        }
      }
      Thread.sleep(10);
    }
    throw new AssertionError("no such frame within " + timeout + "; the server sent " + events);
  }

  private interface FrameWrite {
    void write(ChannelHandlerContext ctx) throws Exception;
  }

  private synchronized void write(FrameWrite frame) throws IOException {
    try {
      frame.write(frames.pipeline().firstContext());
    } catch (Exception e) {
      throw new IOException(e);
    }
    frames.flushOutbound();
    for (Object written; (written = frames.readOutbound()) != null; ) {
      send((ByteBuf) written);
    }
  }

  /** A frame written from the reader's thread: a failure there ends the reading. */
  private void reply(FrameWrite frame) {
    try {
      write(frame);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private synchronized void send(ByteBuf bytes) throws IOException {
    try {
      byte[] array = new byte[bytes.readableBytes()];
      bytes.readBytes(array);
      out.write(array);
      out.flush();
    } finally {
      bytes.release();
    }
  }

  private void read(InputStream in) {
    DefaultHttp2FrameReader reader = new DefaultHttp2FrameReader();
    ByteBuf pending = Unpooled.buffer();
    Http2FrameAdapter listener = new Http2FrameAdapter() {
      @Override
      public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers, int padding,
          boolean endOfStream) {
        events.add("HEADERS " + streamId + " :status=" + headers.status());
      }

      @Override
      public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers, int streamDependency,
          short weight, boolean exclusive, int padding, boolean endOfStream) {
        onHeadersRead(ctx, streamId, headers, padding, endOfStream);
      }

      @Override
      public void onRstStreamRead(ChannelHandlerContext ctx, int streamId, long errorCode) {
        events.add("RST " + streamId + " error=" + errorCode);
      }

      @Override
      public void onGoAwayRead(ChannelHandlerContext ctx, int lastStreamId, long errorCode, ByteBuf debugData) {
        events.add("GOAWAY last=" + lastStreamId + " error=" + errorCode);
      }

      @Override
      public void onSettingsRead(ChannelHandlerContext ctx, Http2Settings settings) {
        reply(c -> writer.writeSettingsAck(c, c.newPromise()));
      }

      @Override
      public void onPingRead(ChannelHandlerContext ctx, long data) {
        events.add("PING");
        if (answerPings) {
          reply(c -> writer.writePing(c, true, data, c.newPromise()));
        }
      }
    };
    byte[] chunk = new byte[16_384];
    try {
      for (int n; (n = in.read(chunk)) >= 0; ) {
        pending.writeBytes(chunk, 0, n);
        reader.readFrame(frames.pipeline().firstContext(), pending, listener);
        pending.discardReadBytes();
      }
    } catch (Exception closed) {
      // reset, or a frame this reader refuses: the connection is over for this client either way
    }
    events.add("EOF");
  }

  /** Ends the connection with a TCP reset (SO_LINGER 0), as a client process that dies or gives up does. */
  public void abort() throws IOException {
    socket.setSoLinger(true, 0);
    close();
  }

  @Override
  public void close() throws IOException {
    socket.close();
    frames.finishAndReleaseAll();
  }
}
