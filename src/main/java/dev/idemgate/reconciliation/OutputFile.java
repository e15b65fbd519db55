package dev.idemgate.reconciliation;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import java.util.Optional;

/**
 * The {@code --out} file of the commands, checked before any work: a report written after a run
 * was stored, to a directory that does not exist, would fail only once the run is in the
 * database, and leave the operator a run they cannot read from the command line.
 */
final class OutputFile {
  private OutputFile() {}

  /**
   * Empty when {@code file} can be written, otherwise why not ("no such directory …", "permission
   * denied", "is a directory"). The file is really opened (created, then removed again, when it did
   * not exist), so a read-only file system or a directory without write access is found too; a
   * file that exists keeps its content.
   */
  static Optional<String> problem(Path file) {
    if (Files.isDirectory(file)) {
      return Optional.of("is a directory");
    }
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null && !Files.isDirectory(parent)) {
      return Optional.of(Files.exists(parent) ? "not a directory: " + parent : "no such directory: " + parent);
    }
    try {
      if (Files.exists(file)) {
        try (OutputStream ignored = Files.newOutputStream(file, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
          // opened for writing, nothing written: the file is replaced only once the run is done
        }
      } else {
        Files.createFile(file);
        Files.delete(file);
      }
      return Optional.empty();
    } catch (IOException e) {
      return Optional.of(reason(e));
    }
  }

  /** Why a file could not be written, in words: the JDK's message for a missing file is its bare name. */
  static String reason(IOException e) {
    if (e instanceof AccessDeniedException) {
      return "permission denied";
    }
    if (e instanceof NoSuchFileException) {
      return "no such file or directory";
    }
    if (e instanceof FileSystemException f && f.getReason() != null) {
      return f.getReason().toLowerCase(Locale.ROOT); // "read-only file system", "is a directory", "no space left on device"
    }
    return String.valueOf(e.getMessage()).lines().findFirst().orElse("");
  }
}
