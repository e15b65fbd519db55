package dev.idemgate.support;

import java.net.URI;

/**
 * The test PostgreSQL ({@link TestGateway#pgUrl()}) behind a {@link FaultProxy} of the test's own:
 * a gateway given {@link #url()} reaches the shared database only through the proxy, which the
 * test slows down, refuses or cuts. The database itself is never touched.
 */
public final class ProxiedPostgres implements AutoCloseable {
  private final FaultProxy proxy;
  private final String url;

  private ProxiedPostgres(FaultProxy proxy, String url) {
    this.proxy = proxy;
    this.url = url;
  }

  public static ProxiedPostgres start() {
    return start(TestGateway.pgUrl());
  }

  /** The database of {@code pgUrl} (on the test PostgreSQL: a {@link ScratchDatabase}'s) behind a proxy. */
  public static ProxiedPostgres start(String pgUrl) {
    URI target = URI.create(pgUrl.replaceFirst("^postgres(ql)?://", "http://"));
    FaultProxy proxy = FaultProxy.start(target.getHost(), target.getPort() < 0 ? 5432 : target.getPort());
    String user = target.getRawUserInfo() == null ? "" : target.getRawUserInfo() + "@";
    String query = target.getRawQuery() == null ? "" : "?" + target.getRawQuery();
    return new ProxiedPostgres(proxy, "postgresql://" + user + "127.0.0.1:" + proxy.port() + target.getRawPath() + query);
  }

  public FaultProxy proxy() {
    return proxy;
  }

  /** The value for {@code IDEMGATE_PG_URL}: the same database, through the proxy. */
  public String url() {
    return url;
  }

  @Override
  public void close() {
    proxy.close();
  }
}
