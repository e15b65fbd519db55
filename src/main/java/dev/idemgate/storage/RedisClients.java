package dev.idemgate.storage;

import dev.idemgate.config.GatewayConfig;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisClientType;
import io.vertx.redis.client.RedisConnection;
import io.vertx.redis.client.RedisOptions;
import io.vertx.redis.client.RedisReplicas;
import io.vertx.redis.client.RedisRole;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * The one place Redis client options are made, for every kind of deployment: a single server,
 * Redis Sentinel (the gateway asks the sentinels for the current master of {@code redis_master_name}
 * and follows failovers), or Redis Cluster (keys carry a hash tag, so each record's commands stay
 * on one slot). {@code redis_url} holds one URL, or for sentinel and cluster a comma-separated list.
 */
public final class RedisClients {
  private RedisClients() {}

  /** Whether {@code redis_url} is a Redis Cluster, where one write may only carry one hash slot's commands. */
  public static boolean isCluster(GatewayConfig config) {
    return config.redisMode().equals("cluster");
  }

  /**
   * For one {@link PipelinedRedis}: more than the one connection in use, because a cluster client
   * takes a second one from a node's pool while it learns the slots (with one, RedisClusterIT's
   * gateway never got the gate back), the twin check keeps one of its own, and each of the two may
   * hold a connection it left for being quiet until its read-idle close (at most 1.5 s).
   */
  public static RedisOptions pipelineOptions(GatewayConfig config, String name) {
    return options(config, 6, name);
  }

  /** The pipeline of one verticle, for a client made with {@link #pipelineOptions} and the same {@code config}. */
  public static PipelinedRedis pipeline(Redis client, Context context, GatewayConfig config) {
    return new PipelinedRedis(client, context, isCluster(config), reuseLimit(config));
  }

  /**
   * For a client whose connections carry commands and their replies only (every client but the
   * completion notifier's): a connection is closed once nothing has been read from it for
   * {@link #readIdle} (four Redis deadlines, at least 3 s: well above the rate limiter's one-second
   * tick, whose scripts a shorter idle time would cut in flight), so that a connection that stops
   * answering without being closed (a hung peer, a host gone without a reset) is left instead of
   * timing every command out until TCP gives up on it. Closing it also fails the commands still
   * waiting on it, which frees a pooled client's lease. An idle connection is closed the same way
   * and opened again by the next command.
   *
   * <p>Hazard: that close does not wait for a command being written. A command sent on a connection
   * just as its read-idle time runs out fails (measured: 5 to 15 of 30 commands sent within 2 ms
   * before it), either unsent or with its reply lost, and a gate command that fails falls back to
   * PostgreSQL with a warning. So no connection is used once it has been quiet for
   * {@link #reuseLimit}: the pool closes a connection left unused that long (its cleaner looks every
   * sixteenth of the read-idle time), and a {@link PipelinedRedis} or the twin check leaves the
   * connection it keeps (but for Redis Cluster, see {@link PipelinedRedis}).
   *
   * @param name the connection pool's {@code pool_name} on the {@code vertx_pool_*} meters (else a random UUID)
   */
  public static RedisOptions options(GatewayConfig config, int poolSize, String name) {
    return closingIdleConnections(baseOptions(config, poolSize, name), readIdle(config));
  }

  /** Sets the read-idle close of {@link #options}, and the pool settings that keep commands off it. */
  public static RedisOptions closingIdleConnections(RedisOptions options, Duration readIdle) {
    options.getNetClientOptions().setReadIdleTimeout((int) readIdle.toMillis())
        .setIdleTimeoutUnit(TimeUnit.MILLISECONDS);
    return options.setPoolRecycleTimeout((int) reuseLimit(readIdle).toMillis())
        .setPoolCleanerInterval((int) Math.max(1, readIdle.toMillis() / 16));
  }

  /**
   * How long a connection of a client made with {@link #options} may go quiet (nothing read from it)
   * and still be written on: half its read-idle time. The other half, at least 1.5 s and twice
   * {@code redis_timeout}, is the longest a command sent just before the limit can wait for its
   * reply before the read-idle close; a command waiting longer has missed its own deadline anyway.
   */
  public static Duration reuseLimit(GatewayConfig config) {
    return reuseLimit(readIdle(config));
  }

  /** {@link #reuseLimit(GatewayConfig)} of a client that closes connections after {@code readIdle}. */
  public static Duration reuseLimit(Duration readIdle) {
    return readIdle.dividedBy(2);
  }

  /**
   * For the completion notifier's subscriptions, which wait quietly on purpose, so no read-idle
   * close: the notifier leaves its connection itself when a SUBSCRIBE goes unconfirmed. Two
   * connections: a new one may open while the one left is still closing.
   */
  public static RedisOptions subscriberOptions(GatewayConfig config, String name) {
    return baseOptions(config, 2, name);
  }

  /**
   * A connection from {@code redis} within {@code timeoutMs}. One that arrives after its deadline is
   * given back to the pool, not left holding a slot for a caller that gave up on it.
   */
  public static Future<RedisConnection> connect(Redis redis, long timeoutMs) {
    Future<RedisConnection> connecting = redis.connect();
    Future<RedisConnection> opening = connecting.timeout(timeoutMs, TimeUnit.MILLISECONDS);
    opening.onFailure(late -> connecting.onSuccess(RedisConnection::close));
    return opening;
  }

  /** How long a client waits, reading nothing, before it closes a connection: four Redis deadlines, at least 3 s. */
  public static Duration readIdle(GatewayConfig config) {
    Duration fourDeadlines = config.redisTimeout().multipliedBy(4);
    return fourDeadlines.compareTo(Duration.ofSeconds(3)) < 0 ? Duration.ofSeconds(3) : fourDeadlines;
  }

  /**
   * How long opening a connection may take: {@code redis_timeout}, at least 1 s. Netty's default is
   * 60 s, and a Redis that drops connection attempts (a lost node still listed, a Sentinel naming a
   * dead master) held every command of a pipeline waiting on its connection for that long.
   */
  static int connectTimeoutMillis(GatewayConfig config) {
    return (int) Math.max(1_000, config.redisTimeout().toMillis());
  }

  /**
   * TLS for {@code rediss://} URLs: the server's certificate is checked against {@code
   * redis_tls_ca_file} if set, else the JVM's trust store, and its host name against the URL's.
   * Vert.x 5 refuses a TLS connection whose client names no host name verification (every rediss://
   * URL failed to connect with "Missing hostname verification algorithm").
   */
  static void withTls(NetClientOptions net, Optional<String> caFile) {
    net.setHostnameVerificationAlgorithm("HTTPS");
    caFile.ifPresent(file -> net.setTrustOptions(new PemTrustOptions().addCertPath(file)));
  }

  private static RedisOptions baseOptions(GatewayConfig config, int poolSize, String name) {
    RedisOptions options = new RedisOptions()
        .setPoolName(name)
        .setMaxPoolSize(poolSize)
        .setMaxPoolWaiting(4_096)
        .setMaxWaitingHandlers(4_096);
    options.getNetClientOptions().setConnectTimeout(connectTimeoutMillis(config));
    boolean tls = false;
    for (String url : config.redisUrls()) {
      options.addConnectionString(url);
      tls |= url.startsWith("rediss://");
    }
    if (tls) {
      withTls(options.getNetClientOptions(), config.redisTlsCaFile());
    }
    switch (config.redisMode()) {
      case "sentinel" -> options.setType(RedisClientType.SENTINEL).setMasterName(config.redisMasterName())
          .setRole(RedisRole.MASTER);
      case "cluster" -> options.setType(RedisClientType.CLUSTER).setUseReplicas(RedisReplicas.NEVER);
      default -> options.setType(RedisClientType.STANDALONE);
    }
    return options;
  }
}
