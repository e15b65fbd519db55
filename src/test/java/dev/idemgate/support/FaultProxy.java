package dev.idemgate.support;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A TCP proxy for fault injection between a client and a server (the gateway and the acquirer, or the
 * gateway and Redis or PostgreSQL). It listens on a free port of 127.0.0.1 and forwards every
 * connection to a target; what it does to traffic can be changed at any time from the test thread:
 *
 * <ul>
 *   <li>{@link #pass()}: forward both ways (the initial mode), after {@link #latency(long)} if set;</li>
 *   <li>{@link #refuse()}: stop listening, so new connections are refused (ECONNREFUSED); open ones go on;</li>
 *   <li>{@link #blackhole()}: accept new connections but forward nothing, and drop every byte on open
 *       ones too: a frozen network or a hung peer. Dropped bytes are gone, so {@link #cutAll()} the
 *       connections before passing traffic again;</li>
 *   <li>{@link #freezeOpen()}: drop every byte on the connections open now, for good, while new ones
 *       pass: a peer that hangs without closing (a hung process, a host gone without a reset) as
 *       seen by a client that keeps its connection;</li>
 *   <li>{@link #cutAll()}: reset (TCP RST) every open connection on both sides at once;</li>
 *   <li>{@link #latency(long)}: delay every forwarded chunk by that much, keeping order;</li>
 *   <li>{@link #loseAnswerAfter} and {@link #resetBefore}: lose one connection just after, or just
 *       before, a request that contains a marker.</li>
 * </ul>
 *
 * <p>Plain blocking sockets on daemon threads (an acceptor, and per connection a reader and a writer
 * each way), so it depends on nothing it is used to test, and closing the listening socket refuses new
 * connections without touching the open ones. Meant for test loads (hundreds of connections, not more).
 * A connection the target refuses is reset towards the client, as an L4 load balancer would.
 */
public final class FaultProxy implements AutoCloseable {
  /** What the proxy does with traffic. */
  public enum Mode { PASS, REFUSE, BLACKHOLE }

  private static final int CHUNK = 16 * 1024;

  private final InetSocketAddress target;
  private final int port;
  private final Set<Link> links = ConcurrentHashMap.newKeySet();
  private final AtomicLong accepted = new AtomicLong();
  private volatile ServerSocket listener;
  private volatile Mode mode = Mode.PASS;
  private volatile long latencyMs;
  /** A one-shot fault armed by {@link #loseAnswerAfter}: what the client sends that triggers it, and the reset's delay. */
  private final AtomicReference<LostAnswer> lostAnswer = new AtomicReference<>();

  private record LostAnswer(byte[] marker, long resetAfterMs) {}

  /** A one-shot fault armed by {@link #resetBefore}: what the client sends that triggers it. */
  private final AtomicReference<byte[]> lostRequest = new AtomicReference<>();

  private FaultProxy(InetSocketAddress target) throws IOException {
    this.target = target;
    ServerSocket first = new ServerSocket(0, 200, InetAddress.getLoopbackAddress());
    this.port = first.getLocalPort();
    startAccepting(first);
  }

  /** Starts a proxy on a free port of 127.0.0.1 forwarding to {@code targetHost:targetPort}, in {@link Mode#PASS}. */
  public static FaultProxy start(String targetHost, int targetPort) {
    try {
      return new FaultProxy(new InetSocketAddress(targetHost, targetPort));
    } catch (IOException e) {
      throw new IllegalStateException("fault proxy could not listen: " + e, e);
    }
  }

  /** The port clients connect to. It stays the same across {@link #refuse()} and {@link #pass()}. */
  public int port() {
    return port;
  }

  /** {@code http://127.0.0.1:<port>}, for HTTP targets. */
  public String httpUrl() {
    return "http://127.0.0.1:" + port;
  }

  public Mode mode() {
    return mode;
  }

  /** Forwards traffic both ways; listens again if it was refusing. */
  public synchronized void pass() {
    Mode previous = mode;
    mode = Mode.PASS;
    if (previous == Mode.REFUSE) {
      listenAgain();
    }
  }

  /** Closes the listening socket: new connections are refused; open connections keep forwarding. */
  public synchronized void refuse() {
    mode = Mode.REFUSE;
    closeQuietly(listener);
    awaitRefusing();
  }

  /**
   * Returns once a new connection to the port is refused, for up to two seconds. The listener's
   * close can reach the kernel a moment after {@code close()} returns (the accept thread is still
   * blocked in accept), and a client connecting in that moment would get through. Probes connect
   * from a source port chosen first and never the proxy's own: with no listener, a plain connect
   * can be given the freed port as its source and connect to itself (TCP simultaneous open).
   */
  private void awaitRefusing() {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
    while (System.nanoTime() < deadline) {
      try (Socket probe = new Socket()) {
        probe.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        if (probe.getLocalPort() == port) {
          continue;
        }
        probe.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 200);
      } catch (IOException refused) {
        return;
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /** Accepts connections but forwards no byte in either direction, on new and open connections alike. */
  public synchronized void blackhole() {
    Mode previous = mode;
    mode = Mode.BLACKHOLE;
    if (previous == Mode.REFUSE) {
      listenAgain();
    }
  }

  /** The connections open now forward nothing more, either way, and stay open; new connections are not affected. */
  public void freezeOpen() {
    links.forEach(link -> link.frozen = true);
  }

  /** Delays every chunk forwarded from now on by {@code ms} (0: none); order is kept. */
  public void latency(long ms) {
    if (ms < 0) {
      throw new IllegalArgumentException("latency must not be negative");
    }
    latencyMs = ms;
  }

  /** Resets every open connection, client side and target side; returns how many there were. */
  public int cutAll() {
    List<Link> open = new ArrayList<>(links);
    open.forEach(Link::reset);
    return open.size();
  }

  /**
   * Once: the first chunk a client sends that contains {@code marker} is forwarded to the target,
   * then its connection forwards nothing more either way and is reset {@code resetAfterMs} later.
   * The target has the request and acts on it (a PostgreSQL {@code COMMIT} commits), and the client
   * never hears the answer: the connection is lost during the request.
   */
  public void loseAnswerAfter(String marker, long resetAfterMs) {
    lostAnswer.set(new LostAnswer(marker.getBytes(StandardCharsets.UTF_8), resetAfterMs));
  }

  /**
   * Once: the first chunk a client sends that contains {@code marker} is not forwarded, and its
   * connection is reset at once. The target never gets the request (nor what came with it in the
   * same chunk): the connection is lost just before it, as when the target restarts.
   */
  public void resetBefore(String marker) {
    lostRequest.set(marker.getBytes(StandardCharsets.UTF_8));
  }

  private static boolean contains(byte[] bytes, byte[] marker) {
    for (int i = 0; i + marker.length <= bytes.length; i++) {
      if (Arrays.equals(bytes, i, i + marker.length, marker, 0, marker.length)) {
        return true;
      }
    }
    return false;
  }

  /** Connections open through the proxy now. */
  public int openConnections() {
    return links.size();
  }

  /** Connections accepted since the proxy started (refused ones never arrive, so they do not count). */
  public long acceptedConnections() {
    return accepted.get();
  }

  @Override
  public synchronized void close() {
    closeQuietly(listener);
    cutAll();
  }

  private void listenAgain() {
    try {
      ServerSocket again = new ServerSocket();
      again.setReuseAddress(true);
      again.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 200);
      startAccepting(again);
    } catch (IOException e) {
      throw new IllegalStateException("fault proxy could not listen on port " + port + " again: " + e, e);
    }
  }

  private void startAccepting(ServerSocket server) {
    listener = server;
    daemon("fault-proxy-accept-" + port, () -> {
      while (!server.isClosed()) {
        try {
          Socket client = server.accept();
          if (mode == Mode.REFUSE) {
            closeQuietly(client); // slipped in while the listener's close reached the kernel
            continue;
          }
          accepted.incrementAndGet();
          open(client);
        } catch (IOException e) {
          return; // closed by refuse() or close()
        }
      }
    });
  }

  private void open(Socket client) {
    Link link = new Link(client);
    links.add(link);
    if (mode == Mode.BLACKHOLE) {
      // Never connected upstream: the client waits for an answer that cannot come.
      daemon("fault-proxy-sink-" + port, () -> link.drain(client));
      return;
    }
    daemon("fault-proxy-connect-" + port, () -> {
      Socket upstream = new Socket();
      try {
        upstream.setTcpNoDelay(true);
        upstream.connect(target, 5_000);
      } catch (IOException e) {
        closeQuietly(upstream);
        link.reset();
        return;
      }
      link.connect(upstream);
    });
  }

  /** One client connection and, once connected, its twin towards the target. */
  private final class Link {
    final Socket client;
    volatile Socket upstream;
    volatile boolean done;
    volatile boolean frozen;

    Link(Socket client) {
      this.client = client;
      try {
        client.setTcpNoDelay(true);
      } catch (SocketException e) {
        // only a latency hint
      }
    }

    void connect(Socket upstream) {
      this.upstream = upstream;
      if (done) {
        resetSocket(upstream);
        return;
      }
      pump(client, upstream, "up");
      pump(upstream, client, "down");
    }

    /** Reads {@code from} and writes to {@code to}, through a queue so that latency delays without reordering. */
    private void pump(Socket from, Socket to, String direction) {
      LinkedBlockingQueue<Chunk> queue = new LinkedBlockingQueue<>();
      daemon("fault-proxy-read-" + direction + "-" + port, () -> {
        byte[] buffer = new byte[CHUNK];
        try {
          InputStream in = from.getInputStream();
          int n;
          while ((n = in.read(buffer)) >= 0) {
            byte[] lost = lostRequest.get();
            if (direction.equals("up") && lost != null && contains(Arrays.copyOf(buffer, n), lost)
                && lostRequest.compareAndSet(lost, null)) {
              reset();
              queue.offer(Chunk.END);
              return;
            }
            if (mode != Mode.BLACKHOLE && !frozen) {
              queue.put(new Chunk(System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(latencyMs), Arrays.copyOf(buffer, n)));
            }
          }
          queue.put(Chunk.END);
        } catch (IOException e) {
          reset();
          queue.offer(Chunk.END);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      });
      daemon("fault-proxy-write-" + direction + "-" + port, () -> {
        try {
          OutputStream out = to.getOutputStream();
          while (true) {
            Chunk chunk = queue.take();
            long waitNanos = chunk.dueNanos - System.nanoTime();
            if (waitNanos > 0) {
              TimeUnit.NANOSECONDS.sleep(waitNanos);
            }
            if (chunk == Chunk.END) {
              finish();
              return;
            }
            if (done) {
              return;
            }
            if (mode != Mode.BLACKHOLE && !frozen) {
              out.write(chunk.bytes);
              out.flush();
              LostAnswer lost = lostAnswer.get();
              if (direction.equals("up") && lost != null && contains(chunk.bytes, lost.marker())
                  && lostAnswer.compareAndSet(lost, null)) {
                frozen = true;
                daemon("fault-proxy-lost-answer-" + port, () -> {
                  try {
                    Thread.sleep(lost.resetAfterMs());
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                  reset();
                });
              }
            }
          }
        } catch (IOException e) {
          reset();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      });
    }

    /** Blackholed from the start: read and forget until the client goes away or is cut. */
    void drain(Socket socket) {
      byte[] buffer = new byte[CHUNK];
      try {
        InputStream in = socket.getInputStream();
        while (in.read(buffer) >= 0) {
          // dropped
        }
        finish();
      } catch (IOException e) {
        reset();
      }
    }

    /** One side ended normally (FIN): end both after what was already forwarded. */
    void finish() {
      if (done) {
        return;
      }
      done = true;
      links.remove(this);
      closeQuietly(client);
      closeQuietly(upstream);
    }

    void reset() {
      if (done) {
        return;
      }
      done = true;
      links.remove(this);
      resetSocket(client);
      resetSocket(upstream);
    }
  }

  private record Chunk(long dueNanos, byte[] bytes) {
    static final Chunk END = new Chunk(0, new byte[0]);
  }

  /** Drops the connection with a TCP RST: SO_LINGER 0 discards unsent data and skips the FIN handshake. */
  private static void resetSocket(Socket socket) {
    if (socket == null) {
      return;
    }
    try {
      if (!socket.isClosed()) {
        socket.setSoLinger(true, 0);
      }
    } catch (SocketException e) {
      // already gone: nothing left to reset
    }
    closeQuietly(socket);
  }

  private static void closeQuietly(AutoCloseable closeable) {
    if (closeable == null) {
      return;
    }
    try {
      closeable.close();
    } catch (Exception e) {
      // closing on a fault path: the socket is unusable either way
    }
  }

  private static void daemon(String name, Runnable body) {
    Thread thread = new Thread(body, name);
    thread.setDaemon(true);
    thread.start();
  }
}
