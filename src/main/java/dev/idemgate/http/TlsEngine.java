package dev.idemgate.http;

import io.vertx.core.net.JdkSSLEngineOptions;
import io.vertx.core.net.OpenSSLEngineOptions;
import io.vertx.core.net.SSLEngineOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Chooses the TLS engine: OpenSSL (netty-tcnative BoringSSL) when it loads here, else the JDK's, said in the log. */
final class TlsEngine {
  private static final Logger log = LoggerFactory.getLogger(TlsEngine.class);

  private TlsEngine() {}

  static SSLEngineOptions preferred() {
    if (OpenSSLEngineOptions.isAvailable() && OpenSSLEngineOptions.isAlpnAvailable()) {
      log.info("TLS engine: OpenSSL (BoringSSL)");
      return new OpenSSLEngineOptions();
    }
    log.warn("TLS engine: OpenSSL is not available on this platform; falling back to the JDK engine");
    return new JdkSSLEngineOptions();
  }
}
