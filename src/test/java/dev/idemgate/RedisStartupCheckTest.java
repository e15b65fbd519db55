package dev.idemgate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.idemgate.config.ConfigLoader;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.support.ResettingListener;
import dev.idemgate.support.SilentListener;
import io.netty.channel.unix.Errors;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxException;
import io.vertx.core.VertxOptions;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.SocketException;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The start-up check of Redis, refused in one line whatever the kind of deployment. */
class RedisStartupCheckTest {
  private static Vertx vertx;

  @BeforeAll
  static void start() {
    // The gateway's transport (epoll): under NIO a connection closed unanswered sometimes fails as a
    // bare closed channel instead, which would make the "closed" case below fail now and then.
    vertx = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true));
  }

  @AfterAll
  static void stop() {
    vertx.close().await();
  }

  private static String refusal(String mode, String urls) {
    return refusal(Map.of("IDEMGATE_REDIS_MODE", mode, "IDEMGATE_REDIS_URL", urls));
  }

  private static String refusal(Map<String, String> settings) {
    GatewayConfig config = ConfigLoader.load(Optional.empty(), settings);
    String mode = config.redisMode();
    String urls = config.redisUrl();
    Idemgate.StartupFailure failure = catchThrowableOfType(Idemgate.StartupFailure.class,
        () -> Idemgate.await(Idemgate.checkRedis(vertx, config), "Redis cannot be reached"));
    assertThat(failure).as(mode + " " + urls + " was reached").isNotNull();
    return failure.getMessage();
  }

  @Test
  @DisplayName("sentinels and cluster seeds that all refuse the connection: one line naming each endpoint's failure")
  void sentinelAndClusterRefusalsOnOneLine() {
    for (String mode : new String[] {"sentinel", "cluster"}) {
      String message = refusal(mode, "redis://127.0.0.1:1,redis://127.0.0.1:2");
      assertThat(message).as(mode).doesNotContain("\n", "\r", "Exception")
          .startsWith("Redis cannot be reached: Cannot connect to any of the provided endpoints ("
              + (mode.equals("sentinel") ? "the sentinels" : "the cluster seeds") + " redis://127.0.0.1:1, redis://127.0.0.1:2): ")
          .contains("Connection refused: /127.0.0.1:1", "Connection refused: /127.0.0.1:2");
    }
  }

  @Test
  @DisplayName("the endpoints a sentinel or cluster failure names are shown without their passwords")
  void endpointsNamedWithoutPasswords() {
    String message = refusal("sentinel", "redis://:s3cret-one@127.0.0.1:1,redis://user:s3cret-two@127.0.0.1:2");
    assertThat(message).doesNotContain("s3cret")
        .contains("(the sentinels redis://:***@127.0.0.1:1, redis://user:***@127.0.0.1:2)");
  }

  @Test
  @DisplayName("a server that is no sentinel: its errors for each sentinel command on one line")
  void notASentinelOnOneLine() {
    String message = refusal("sentinel", "redis://127.0.0.1:6379");
    assertThat(message).doesNotContain("\n", "\r")
        .startsWith("Redis cannot be reached: Cannot connect to any of the provided endpoints (the sentinels "
            + "redis://127.0.0.1:6379): ")
        .contains("unknown command");
  }

  @Test
  @DisplayName("a standalone Redis that refuses the connection: the cause's message, as before")
  void standaloneAsBefore() {
    assertThat(refusal("standalone", "redis://127.0.0.1:1")).doesNotContain("\n")
        .startsWith("Redis cannot be reached: ").contains("Connection refused: /127.0.0.1:1");
  }

  @Test
  @DisplayName("a Redis that accepts the connection and never answers: one line saying it gave no answer, and within how "
      + "long (still tolerated under redis_at_start: optional, see unreachableFailures)")
  void silentRedisSaysNoAnswer() throws IOException {
    try (SilentListener silent = new SilentListener()) {
      String url = "redis://127.0.0.1:" + silent.port();
      // redis_timeout 500ms: the connection, silent for its read-idle time (3 s), is closed first.
      assertThat(refusal("standalone", url)).isEqualTo("Redis cannot be reached: no answer within 3 s");
      // redis_timeout 2s: a read-idle time of 8 s, so the check's own deadline, 5 s, ends it.
      assertThat(refusal(Map.of("IDEMGATE_REDIS_URL", url, "IDEMGATE_REDIS_TIMEOUT", "2s")))
          .isEqualTo("Redis cannot be reached: no answer within 5 s");
      assertThat(silent.acceptedCount()).as("connections the checks made").isEqualTo(2);
    }
  }

  @Test
  @DisplayName("sentinels or cluster seeds that accept the connection and never answer: one line naming the endpoints "
      + "asked (still tolerated under redis_at_start: optional)")
  void silentSentinelsAndSeedsNamed() throws IOException {
    try (SilentListener first = new SilentListener(); SilentListener second = new SilentListener()) {
      String urls = "redis://127.0.0.1:" + first.port() + ",redis://127.0.0.1:" + second.port();
      // Sentinels and seeds are asked one after another, each closed at the read-idle time (3 s): the
      // check's own deadline (5 s) ends the wait, whose failure named neither endpoint before.
      for (String mode : new String[] {"sentinel", "cluster"}) {
        Throwable failure = checkFailure(mode, urls);
        assertThat(Idemgate.oneLine(failure)).as(mode).isEqualTo("no answer within 5 s from "
            + (mode.equals("sentinel") ? "the sentinels" : "the cluster seeds")
            + " redis://127.0.0.1:" + first.port() + ", redis://127.0.0.1:" + second.port());
        assertThat(Idemgate.unreachable(failure)).as(mode + " tolerated").isTrue();
      }
    }
  }

  @Test
  @DisplayName("a database number the server does not have (its 'databases', 16 by default) stops start-up in one line")
  void databaseOutOfRange() {
    // Negative and non-numeric ones are refused at load (ConfigRefusalsTest); the upper bound is the
    // server's own, which it checks when the connection selects the database.
    assertThat(refusal("standalone", "redis://127.0.0.1:6379/99"))
        .isEqualTo("Redis cannot be reached: ERR DB index is out of range");
  }

  /** What {@link Idemgate#checkRedis} failed with, against {@code urls} in {@code mode}. */
  private static Throwable checkFailure(String mode, String urls) {
    return checkFailure(vertx, mode, urls);
  }

  private static Throwable checkFailure(Vertx vertx, String mode, String urls) {
    GatewayConfig config = ConfigLoader.load(Optional.empty(), Map.of("IDEMGATE_REDIS_MODE", mode, "IDEMGATE_REDIS_URL", urls));
    Future<Void> check = Idemgate.checkRedis(vertx, config);
    try {
      check.toCompletionStage().toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS);
    } catch (Exception e) {
      return e.getCause();
    }
    throw new AssertionError(mode + " " + urls + " was reached");
  }

  @Test
  @DisplayName("redis_at_start optional: what says Redis is not there (refused, unresolvable, no answer, every endpoint refused) is tolerated")
  void unreachableFailures() throws IOException {
    assertThat(Idemgate.unreachable(checkFailure("standalone", "redis://127.0.0.1:1"))).as("refused").isTrue();
    assertThat(Idemgate.unreachable(checkFailure("standalone", "redis://no-such-host.invalid:6379"))).as("unresolvable").isTrue();
    for (String mode : new String[] {"sentinel", "cluster"}) {
      assertThat(Idemgate.unreachable(checkFailure(mode, "redis://127.0.0.1:1,redis://127.0.0.1:2"))).as(mode + " refused").isTrue();
      assertThat(Idemgate.unreachable(checkFailure(mode, "redis://no-such-host.invalid:26379"))).as(mode + " unresolvable").isTrue();
    }
    // Accepts the connection (the kernel's backlog) and never answers: closed at the client's read-idle deadline.
    try (ServerSocket silent = new ServerSocket(0, 5, InetAddress.getLoopbackAddress())) {
      assertThat(Idemgate.unreachable(checkFailure("standalone", "redis://127.0.0.1:" + silent.getLocalPort()))).as("silent").isTrue();
    }
    // Accepts and closes at once, unanswered (a proxy with nothing behind it).
    try (ServerSocket closing = new ServerSocket(0, 5, InetAddress.getLoopbackAddress())) {
      Thread closer = new Thread(() -> {
        while (!closing.isClosed()) {
          try {
            closing.accept().close();
          } catch (IOException e) {
            return;
          }
        }
      });
      closer.start();
      Throwable closed = checkFailure("standalone", "redis://127.0.0.1:" + closing.getLocalPort());
      assertThat(Idemgate.unreachable(closed)).as("closed: " + closed).isTrue();
    }
  }

  @Test
  @DisplayName("redis_at_start optional: a connection reset before any answer (a sidecar or load balancer with no Redis behind it) is tolerated")
  void connectionReset() throws IOException {
    // The gateway's transport, epoll: a reset reads "Errors$NativeIoException: recvAddress(..) failed
    // with error(-104): Connection reset by peer".
    Vertx epoll = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true));
    try (ResettingListener reset = new ResettingListener()) {
      assertThat(epoll.isNativeTransportEnabled()).as("epoll, as the gateway: %s", epoll.unavailableNativeTransportCause()).isTrue();
      String url = "redis://127.0.0.1:" + reset.port();
      Throwable standalone = checkFailure(epoll, "standalone", url);
      assertThat(standalone).hasMessageContaining("Connection reset");
      assertThat(Idemgate.unreachable(standalone)).as("standalone: %s", standalone).isTrue();
      for (String mode : new String[] {"sentinel", "cluster"}) {
        Throwable failure = checkFailure(epoll, mode, url + ",redis://127.0.0.1:1");
        assertThat(failure).hasMessageContaining("Connection reset").hasMessageContaining("Connection refused");
        assertThat(Idemgate.unreachable(failure)).as("%s, one endpoint reset, one refused: %s", mode, failure.getMessage()).isTrue();
      }
      assertThat(Idemgate.unreachable(checkFailure(epoll, "sentinel", url + ",redis://127.0.0.1:6379")))
          .as("one endpoint reset, one no sentinel").isFalse();
    } finally {
      epoll.close().await();
    }
    // Where epoll does not load, the JDK's NIO words the same reset as one of these, depending on
    // whether the connect, the first write or the read meets it first (each seen against a
    // ResettingListener); Vert.x's "Connection was closed" when the reset closed the connection
    // before the first command was written.
    SocketException annotated = new SocketException("Connection reset by peer: /127.0.0.1:6390");
    annotated.initCause(new SocketException("Connection reset by peer"));
    List<Throwable> nio = List.of(new SocketException("Connection reset"), annotated,
        new IOException("Connection reset by peer"), new VertxException("Connection was closed", true),
        new Errors.NativeIoException("recvAddress(..) failed with error(-104): Connection reset by peer", -104));
    for (Throwable failure : nio) {
      assertThat(Idemgate.unreachable(failure)).as(failure.toString()).isTrue();
    }
    assertThat(Idemgate.unreachable(new ConnectException("""
        Cannot connect to any of the provided endpoints
        - java.net.SocketException: Connection reset
        - io.netty.channel.AbstractChannel$AnnotatedSocketException: Connection reset by peer: /127.0.0.1:6390
        - java.io.IOException: Connection reset by peer
        - io.vertx.core.VertxException: Connection was closed
        - io.netty.channel.unix.Errors$NativeIoException: recvAddress(..) failed with error(-104): Connection reset by peer"""))).isTrue();
  }

  @Test
  @DisplayName("redis_at_start optional: an answer that proves a misconfiguration is not tolerated (database, password, not a sentinel)")
  void misconfigurationFailures() {
    assertThat(Idemgate.unreachable(checkFailure("standalone", "redis://127.0.0.1:6379/99"))).as("database").isFalse();
    assertThat(Idemgate.unreachable(checkFailure("sentinel", "redis://127.0.0.1:6379"))).as("no sentinel").isFalse();
    assertThat(Idemgate.unreachable(checkFailure("sentinel", "redis://127.0.0.1:6379,redis://127.0.0.1:1")))
        .as("one endpoint refused, one no sentinel").isFalse();
    // A TLS client against a plain Redis: no TLS answer, the connection closed at the client's
    // read-idle deadline mid-handshake (StacklessClosedChannelException), as before resets counted.
    Throwable tlsToPlain = checkFailure("standalone", "rediss://127.0.0.1:6379");
    assertThat(Idemgate.unreachable(tlsToPlain)).as("rediss:// to a plain Redis: %s", tlsToPlain).isFalse();
  }

  private static Future<Void> atStart(String setting, String url) {
    return Idemgate.redisAtStart(vertx, ConfigLoader.load(Optional.empty(),
        Map.of("IDEMGATE_REDIS_URL", url, "IDEMGATE_REDIS_AT_START", setting)));
  }

  @Test
  @DisplayName("redis_at_start: required stops start-up on a Redis refusing connections; optional starts; optional still stops on a refusal")
  void redisAtStart() {
    assertThat(catchThrowableOfType(Idemgate.StartupFailure.class,
        () -> Idemgate.await(atStart("required", "redis://127.0.0.1:1"), "Redis cannot be reached")))
        .hasMessageStartingWith("Redis cannot be reached: ").hasMessageContaining("Connection refused");
    Idemgate.await(atStart("optional", "redis://127.0.0.1:1"), "Redis cannot be reached");
    assertThat(catchThrowableOfType(Idemgate.StartupFailure.class,
        () -> Idemgate.await(atStart("optional", "redis://127.0.0.1:6379/99"), "Redis cannot be reached")))
        .hasMessage("Redis cannot be reached: ERR DB index is out of range");
    Idemgate.await(atStart("optional", "redis://127.0.0.1:6379"), "Redis cannot be reached");
  }
}
