package dev.idemgate.support;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** One Redis command over a fresh connection, for setting up and watching throwaway servers in tests. */
public final class RespCommand {
  private RespCommand() {}

  /**
   * Sends {@code args} as one command to {@code 127.0.0.1:port} and returns the reply's text (a
   * status, an error, an integer, or a bulk string's content; for an array, its first line), or
   * null when nothing answered within two seconds.
   */
  public static String call(int port, String... args) {
    try (Socket socket = send(port, args)) {
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

  /**
   * Sends {@code args} as one command and returns the elements of its reply, a flat array (each
   * element's text as {@link #call} gives it), or null when nothing answered within two seconds or
   * the reply was no array.
   */
  public static List<String> callForArray(int port, String... args) {
    try (Socket socket = send(port, args)) {
      InputStream in = socket.getInputStream();
      String header = readLine(in);
      if (!header.startsWith("*")) {
        return null;
      }
      List<String> elements = new ArrayList<>();
      for (int i = Integer.parseInt(header.substring(1)); i > 0; i--) {
        String line = readLine(in);
        if (line.startsWith("$")) {
          int length = Integer.parseInt(line.substring(1));
          elements.add(length < 0 ? null : new String(in.readNBytes(length), StandardCharsets.UTF_8));
          if (length >= 0) {
            readLine(in); // the CRLF after the content
          }
        } else {
          elements.add(line.isEmpty() ? line : line.substring(1));
        }
      }
      return elements;
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  private static Socket send(int port, String... args) throws IOException {
    Socket socket = new Socket();
    try {
      socket.connect(new InetSocketAddress("127.0.0.1", port), 2_000);
      socket.setSoTimeout(2_000);
      StringBuilder request = new StringBuilder("*" + args.length + "\r\n");
      for (String arg : args) {
        request.append('$').append(arg.getBytes(StandardCharsets.UTF_8).length).append("\r\n").append(arg).append("\r\n");
      }
      OutputStream out = socket.getOutputStream();
      out.write(request.toString().getBytes(StandardCharsets.UTF_8));
      out.flush();
      return socket;
    } catch (IOException | RuntimeException e) {
      socket.close();
      throw e;
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
