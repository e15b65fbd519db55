package dev.idemgate.config;

/** A configuration value that cannot be used; its message is one line meant for the operator. */
public final class ConfigException extends RuntimeException {
  public ConfigException(String message) {
    super(message);
  }
}
