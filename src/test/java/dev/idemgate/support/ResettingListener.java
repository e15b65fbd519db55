package dev.idemgate.support;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;

/**
 * A server that accepts every connection and aborts it at once with a TCP reset (SO_LINGER 0), as a
 * service-mesh sidecar or a TCP load balancer with no healthy backend does, or a Redis killed
 * mid-accept.
 */
public final class ResettingListener implements AutoCloseable {
  private final ServerSocket server;

  public ResettingListener() throws IOException {
    server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    Thread acceptor = new Thread(() -> {
      while (!server.isClosed()) {
        try {
          Socket accepted = server.accept();
          // Linger on, timeout 0: close() sends RST instead of FIN.
          accepted.setSoLinger(true, 0);
          accepted.close();
        } catch (IOException closed) {
          return;
        }
      }
    }, "resetting-listener");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  public int port() {
    return server.getLocalPort();
  }

  @Override
  public void close() throws IOException {
    server.close();
  }
}
