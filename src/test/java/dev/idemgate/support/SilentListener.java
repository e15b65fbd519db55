package dev.idemgate.support;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A server that accepts connections and never answers (a hung PostgreSQL, a proxy with nothing
 * behind it): it holds every connection it accepts, open and silent, until closed. What a client
 * sends is read and dropped, so the listener sees when the client gives up and closes its end.
 */
public final class SilentListener implements AutoCloseable {
  private final ServerSocket server;
  private final List<Socket> accepted = new CopyOnWriteArrayList<>();
  private final AtomicInteger closedByClient = new AtomicInteger();
  private volatile boolean closing;

  public SilentListener() throws IOException {
    server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    Thread acceptor = new Thread(() -> {
      while (!server.isClosed()) {
        try {
          Socket socket = server.accept();
          accepted.add(socket);
          readUntilClosed(socket);
        } catch (IOException closed) {
          return;
        }
      }
    }, "silent-listener");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  /** Reads and drops what the client sends until it closes its end (EOF or a reset). */
  private void readUntilClosed(Socket socket) {
    Thread reader = new Thread(() -> {
      byte[] buffer = new byte[4096];
      try {
        InputStream in = socket.getInputStream();
        while (in.read(buffer) >= 0) {
          // never answered
        }
      } catch (IOException reset) {
        // a reset by the client, or this listener closing the socket
      }
      if (!closing) {
        closedByClient.incrementAndGet();
      }
    }, "silent-listener-read");
    reader.setDaemon(true);
    reader.start();
  }

  public int port() {
    return server.getLocalPort();
  }

  public int acceptedCount() {
    return accepted.size();
  }

  /** Connections the client closed (this listener never closes one before {@link #close()}). */
  public int closedByClientCount() {
    return closedByClient.get();
  }

  @Override
  public void close() throws IOException {
    closing = true;
    server.close();
    for (Socket socket : accepted) {
      socket.close();
    }
  }
}
