package dev.idemgate.config;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;

/**
 * Why a file cannot be read, in the words an operator reads in a one-line start-up message
 * ("no such file", "permission denied"), not an exception's class name or its message, which
 * for {@link NoSuchFileException} is only the path again.
 */
public final class Unreadable {
  private Unreadable() {}

  /**
   * The reason {@code failure} (or the first of its causes that says one) gives for {@code path}.
   * With a path, asks the file system whether it is a directory (blocking); null skips that.
   */
  public static String reason(Path path, Throwable failure) {
    if (path != null && Files.isDirectory(path)) {
      return "is a directory";
    }
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof NoSuchFileException || t instanceof NotDirectoryException) {
        return "no such file";
      }
      if (t instanceof AccessDeniedException) {
        return "permission denied";
      }
      if (t instanceof FileSystemException fs && fs.getReason() != null) {
        return fs.getReason().toLowerCase(java.util.Locale.ROOT);
      }
      if (t instanceof IOException && t.getMessage() != null && (path == null || !t.getMessage().contains(path.toString()))) {
        return t.getMessage();
      }
    }
    return "cannot be read";
  }

  /**
   * Null when {@code path} is a regular file this process can read, else why not ("no such
   * file", "is a directory", "permission denied"), checked without opening it.
   */
  public static String check(Path path) {
    if (Files.isDirectory(path)) {
      return "is a directory";
    }
    if (!Files.exists(path)) {
      return "no such file";
    }
    if (!Files.isRegularFile(path)) {
      return "not a regular file";
    }
    if (!Files.isReadable(path)) {
      return "permission denied";
    }
    return null;
  }
}
