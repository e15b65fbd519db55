package dev.idemgate.bench;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Appends one result per line (JSON Lines), and echoes it so a human watching sees progress. */
final class Results {
  private Results() {}

  static void append(Path file, JsonObject result) {
    String line = result.encode();
    System.out.println(line);
    if (file == null) {
      return;
    }
    try {
      Files.writeString(file, line + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }

  static JsonObject line(String scenario, String tool, String target, String loop, String protocol) {
    return new JsonObject().put("scenario", scenario).put("tool", tool).put("target", target)
        .put("loop", loop).put("protocol", protocol);
  }
}
