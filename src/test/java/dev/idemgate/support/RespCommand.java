package dev.idemgate.support;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/** One Redis command over a fresh connection, for setting up and watching throwaway servers in tests. */
public final class RespCommand {
  private RespCommand() {}

  /**
   * Sends {@code args} as one command to {@code 127.0.0.1:port} and returns the reply's text (a
   * status, an error, an integer, or a bulk string's content; for an array, its first line), or
   * null when nothing answered within two seconds.
   */
  public static String call(int port, String... args) {
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", port), 2_000);
      socket.setSoTimeout(2_000);
      StringBuilder request = new StringBuilder("*" + args.length + "\r\n");
      for (String arg : args) {
        request.append('$').append(arg.getBytes(StandardCharsets.UTF_8).length).append("\r\n").append(arg).append("\r\n");
      }
      OutputStream out = socket.getOutputStream();
      out.write(request.toString().getBytes(StandardCharsets.UTF_8));
      out.flush();
      InputStream in = socket.getInputStream();
      String line = readLine(in);
      if (line.startsWith("$")) {
        int length = Integer.parseInt(line.substring(1));
        return length < 0 ? null : new String(in.readNBytes(length), StandardCharsets.UTF_8);
      }
      return line.isEmpty() ? line : line.substring(1);
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  private static String readLine(InputStream in) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    int c;
    while ((c = in.read()) >= 0 && c != '\r') {
      line.write(c);
    }
    in.read(); // '\n'
    return line.toString(StandardCharsets.UTF_8);
  }
}
