package dev.idemgate.support;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Vertx;
import io.vertx.core.net.NetServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("FaultProxy")
class FaultProxyTest {
  private Vertx vertx;
  private NetServer echo;
  private FaultProxy proxy;

  @BeforeEach
  void startEchoServerBehindProxy() {
    vertx = Vertx.vertx();
    echo = Http.await(vertx.createNetServer().connectHandler(socket -> socket.handler(socket::write)).listen(0, "127.0.0.1"));
    proxy = FaultProxy.start("127.0.0.1", echo.actualPort());
  }

  @AfterEach
  void stop() {
    proxy.close();
    Http.await(vertx.close());
  }

  @Test
  @DisplayName("in pass mode bytes go through both ways")
  void passForwards() throws IOException {
    try (Socket socket = connect()) {
      assertThat(roundTrip(socket, "hello")).isEqualTo("hello");
      assertThat(proxy.openConnections()).isEqualTo(1);
    }
  }

  @Test
  @DisplayName("refuse makes new connections fail with connection refused, and pass listens again on the same port")
  void refuseThenPass() throws IOException {
    proxy.refuse();
    assertThatThrownBy(this::connectSkippingSelfConnect).isInstanceOf(ConnectException.class);
    proxy.pass();
    try (Socket socket = connect()) {
      assertThat(roundTrip(socket, "again")).isEqualTo("again");
    }
  }

  @Test
  @DisplayName("refuse leaves open connections forwarding")
  void refuseKeepsOpenConnections() throws IOException {
    try (Socket socket = connect()) {
      assertThat(roundTrip(socket, "one")).isEqualTo("one");
      proxy.refuse();
      assertThat(roundTrip(socket, "two")).isEqualTo("two");
    }
  }

  @Test
  @DisplayName("cutAll resets every open connection")
  void cutAllResets() throws IOException {
    try (Socket first = connect(); Socket second = connect()) {
      assertThat(roundTrip(first, "a")).isEqualTo("a");
      assertThat(roundTrip(second, "b")).isEqualTo("b");
      assertThat(proxy.cutAll()).isEqualTo(2);
      first.setSoTimeout(2_000);
      // A reset shows as "Connection reset" on read (or on the write that follows it), never as a clean end of stream.
      assertThatThrownBy(() -> {
        first.getOutputStream().write('x');
        first.getOutputStream().flush();
        first.getInputStream().read();
        first.getOutputStream().write('y');
      }).isInstanceOf(SocketException.class);
      assertThat(proxy.openConnections()).isZero();
    }
  }

  @Test
  @DisplayName("blackhole accepts connections but no byte comes back")
  void blackholeSwallows() throws IOException {
    proxy.blackhole();
    try (Socket socket = connect()) {
      socket.setSoTimeout(500);
      socket.getOutputStream().write("lost".getBytes(StandardCharsets.US_ASCII));
      socket.getOutputStream().flush();
      assertThatThrownBy(() -> socket.getInputStream().read()).isInstanceOf(SocketTimeoutException.class);
    }
  }

  @Test
  @DisplayName("blackhole freezes connections that were already open")
  void blackholeFreezesOpenConnections() throws IOException {
    try (Socket socket = connect()) {
      assertThat(roundTrip(socket, "before")).isEqualTo("before");
      proxy.blackhole();
      socket.setSoTimeout(500);
      socket.getOutputStream().write('x');
      socket.getOutputStream().flush();
      assertThatThrownBy(() -> socket.getInputStream().read()).isInstanceOf(SocketTimeoutException.class);
    }
  }

  @Test
  @DisplayName("latency delays each direction")
  void latencyDelays() throws IOException {
    proxy.latency(150);
    try (Socket socket = connect()) {
      long started = System.nanoTime();
      assertThat(roundTrip(socket, "slow")).isEqualTo("slow");
      assertThat((System.nanoTime() - started) / 1_000_000).isGreaterThanOrEqualTo(290);
    }
  }

  /**
   * Connects from a source port chosen before connecting, never the proxy's own: with no listener,
   * a plain connect can be given the freed port itself as its source and connect to itself (TCP
   * simultaneous open), which also keeps the port busy so the proxy cannot listen on it again.
   */
  private void connectSkippingSelfConnect() throws IOException {
    long deadline = System.nanoTime() + 2_000_000_000L;
    while (true) {
      Socket socket = new Socket();
      socket.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
      if (socket.getLocalPort() == proxy.port()) {
        socket.close();
        continue;
      }
      try {
        socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), proxy.port()), 2_000);
      } finally {
        socket.close();
      }
      // The listener's close can reach the kernel a moment after refuse() returns (the accept
      // thread still blocked in accept): look again, for up to two seconds.
      if (System.nanoTime() > deadline) {
        throw new AssertionError("connected although the proxy refuses");
      }
      Waits.sleep(50);
    }
  }

  private Socket connect() throws IOException {
    Socket socket = new Socket();
    socket.connect(new InetSocketAddress("127.0.0.1", proxy.port()), 2_000);
    return socket;
  }

  private static String roundTrip(Socket socket, String text) throws IOException {
    socket.setSoTimeout(5_000);
    byte[] bytes = text.getBytes(StandardCharsets.US_ASCII);
    socket.getOutputStream().write(bytes);
    socket.getOutputStream().flush();
    InputStream in = socket.getInputStream();
    byte[] read = new byte[bytes.length];
    int n = 0;
    while (n < read.length) {
      int r = in.read(read, n, read.length - n);
      if (r < 0) {
        throw new IOException("connection ended after " + n + " bytes");
      }
      n += r;
    }
    return new String(read, StandardCharsets.US_ASCII);
  }
}
