package dev.idemgate.provider;

import static dev.idemgate.support.Waits.LATE_MS;
import static dev.idemgate.support.Waits.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.support.FaultProxy;
import dev.idemgate.support.Http;
import io.vertx.circuitbreaker.CircuitBreakerState;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The http connector against a real acquirer server (in this JVM, dedup off, so every request that
 * reaches it is charged) behind a {@link FaultProxy}: each way a call can end, and what it must mean.
 */
@DisplayName("HttpProvider against the acquirer simulator")
class HttpProviderIT {
  /** The call's timeout where a test waits for it to run out ({@link #impatient}): short, so those tests are quick. */
  private static final Duration TIMEOUT = Duration.ofMillis(1_000);
  /**
   * The call's timeout where a test expects the acquirer's answer: provider_timeout's default. A 1 s
   * call leaves 0.9 s for the answer, and the class's first exchange (whichever test runs first)
   * loads and compiles the HTTP client, server and proxy code: on two busy cores that took longer,
   * and a 422 was read as UNKNOWN.
   */
  private static final Duration ANSWERED_WITHIN = Duration.ofSeconds(10);
  /** How long the acquirer works on a tok_slow charge: time enough for a loaded machine to act meanwhile. */
  private static final long SLOW_MS = 3_000;

  private Vertx vertx;
  private AcquirerServer acquirer;
  private FaultProxy proxy;
  private Http http;
  /** Expects an answer: {@link #ANSWERED_WITHIN}. */
  private HttpProvider provider;
  /** For the tests that wait for the call's timeout: {@link #TIMEOUT}. */
  private HttpProvider impatient;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
    acquirer = new AcquirerServer(0, 0, SLOW_MS, false);
    Http.await(vertx.deployVerticle(acquirer));
    proxy = FaultProxy.start("127.0.0.1", acquirer.actualPort());
    http = new Http();
    provider = provider(proxy.httpUrl(), HttpProvider.BreakerSettings.DEFAULT);
    impatient = new HttpProvider(vertx, proxy.httpUrl(), TIMEOUT, HttpProvider.BreakerSettings.DEFAULT);
  }

  @AfterEach
  void stop() {
    Http.await(provider.close());
    Http.await(impatient.close());
    proxy.close();
    http.close();
    Http.await(vertx.close());
  }

  private HttpProvider provider(String url, HttpProvider.BreakerSettings breaker) {
    return new HttpProvider(vertx, url, ANSWERED_WITHIN, breaker);
  }

  private static ChargeRequest charge(String source) {
    return new ChargeRequest("pk-" + UUID.randomUUID(), 1999, "EUR", source, "pay_" + UUID.randomUUID());
  }

  /** An inquiry about the charge under {@code providerKey}, for the amount and currency {@link #charge} asks. */
  private static ChargeInquiry about(String providerKey) {
    return new ChargeInquiry(providerKey, 1999, "EUR");
  }

  private JsonObject log(String providerKey) {
    return http.get(acquirer.actualPort(), "/charges?idempotency_key=" + providerKey, null).json();
  }

  private int chargesAt(String providerKey) {
    return log(providerKey).getJsonArray("charges").size();
  }

  @Test
  @DisplayName("a succeeded charge is SUCCEEDED with the acquirer's charge id")
  void succeeded() {
    ChargeRequest request = charge("tok_visa");
    ProviderOutcome outcome = Http.await(provider.charge(request));
    String chargeId = log(request.providerKey()).getJsonArray("charges").getJsonObject(0).getString("id");
    assertThat(outcome).isEqualTo(new ProviderOutcome.Succeeded(chargeId));
  }

  @Test
  @DisplayName("a declined charge is DECLINED with its decline code")
  void declined() {
    ProviderOutcome outcome = Http.await(provider.charge(charge("tok_insufficient_funds")));
    assertThat(outcome).isInstanceOf(ProviderOutcome.Declined.class);
    assertThat(((ProviderOutcome.Declined) outcome).declineCode()).isEqualTo("insufficient_funds");
  }

  @Test
  @DisplayName("503 before acceptance (tok_provider_down) is NOT_ATTEMPTED and nothing is charged")
  void providerDown() {
    ChargeRequest request = charge("tok_provider_down");
    assertThat(Http.await(provider.charge(request))).isInstanceOf(ProviderOutcome.NotAttempted.class);
    assertThat(log(request.providerKey()).getInteger("requests")).isZero();
  }

  @Test
  @DisplayName("a request the acquirer refuses as malformed (422) is NOT_ATTEMPTED and nothing is charged")
  void malformed() {
    ChargeRequest request = new ChargeRequest("pk-" + UUID.randomUUID(), 1999, "EURO", "tok_visa", "pay_x");
    assertThat(Http.await(provider.charge(request))).isInstanceOf(ProviderOutcome.NotAttempted.class);
    assertThat(chargesAt(request.providerKey())).isZero();
  }

  @Test
  @DisplayName("a charge whose send deadline passed while it waited for a connection is NOT_ATTEMPTED and never sent")
  void sendDeadlinePassedWhileConnecting() {
    String providerKey = "pk-" + UUID.randomUUID();
    ChargeRequest expired = new ChargeRequest(providerKey, 1999, "EUR", "tok_visa", "pay_late", System.nanoTime() - 1);
    ProviderOutcome outcome = Http.await(provider.charge(expired));
    assertThat(outcome).isInstanceOf(ProviderOutcome.NotAttempted.class);
    assertThat(log(providerKey).getInteger("requests")).isZero();
  }

  @Test
  @DisplayName("connection refused is NOT_ATTEMPTED and nothing reaches the acquirer")
  void connectionRefused() {
    proxy.refuse();
    ChargeRequest request = charge("tok_visa");
    assertThat(Http.await(provider.charge(request))).isInstanceOf(ProviderOutcome.NotAttempted.class);
    assertThat(log(request.providerKey()).getInteger("requests")).isZero();
  }

  @Test
  @DisplayName("a connect timeout is NOT_ATTEMPTED, given at the connect timeout (half the call's, at most 2 s), "
      + "within the call's own timeout")
  void connectTimeout() throws IOException {
    // A listener whose accept queue is full drops further SYNs, so a connect hangs until it times out.
    try (ServerSocket full = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      List<Socket> queued = fillAcceptQueue(full.getLocalPort());
      try {
        // Long enough that the time between the connect timeout and the call's own is more than a
        // loaded machine adds: with 1 s (0.5 s of it to connect), one took 1.18 s.
        Duration timeout = Duration.ofSeconds(6);
        long connectTimeoutMs = 2_000;
        HttpProvider toFull = new HttpProvider(vertx, "http://127.0.0.1:" + full.getLocalPort(), timeout,
            HttpProvider.BreakerSettings.DEFAULT);
        long started = System.nanoTime();
        ProviderOutcome outcome = Http.await(toFull.charge(charge("tok_visa")));
        long tookMs = (System.nanoTime() - started) / 1_000_000;
        assertThat(outcome).isInstanceOf(ProviderOutcome.NotAttempted.class);
        assertThat(((ProviderOutcome.NotAttempted) outcome).reason()).contains("no connection");
        assertThat(tookMs).as("ms until not attempted: at the connect timeout, before the call's")
            .isGreaterThanOrEqualTo(connectTimeoutMs).isLessThan(timeout.toMillis());
        Http.await(toFull.close());
      } finally {
        for (Socket socket : queued) {
          socket.close();
        }
      }
    }
  }

  private static List<Socket> fillAcceptQueue(int port) throws IOException {
    List<Socket> sockets = new ArrayList<>();
    for (int i = 0; i < 16; i++) {
      Socket socket = new Socket();
      try {
        socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 200);
        sockets.add(socket);
      } catch (SocketTimeoutException e) {
        socket.close();
        return sockets;
      }
    }
    throw new IllegalStateException("the accept queue never filled up");
  }

  @Test
  @DisplayName("an answer lost after the charge (tok_timeout_after_charge) is UNKNOWN when the call's time is up, "
      + "and the charge exists")
  void lostAnswer() {
    ChargeRequest request = charge("tok_timeout_after_charge");
    long started = System.nanoTime();
    ProviderOutcome outcome = Http.await(impatient.charge(request));
    long tookMs = (System.nanoTime() - started) / 1_000_000;
    assertThat(outcome).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(((ProviderOutcome.Unknown) outcome).reason()).startsWith("no answer from the acquirer").contains("Timeout");
    // The connector answers 100 ms before the call's timeout, so that the provider verticle hears it
    // before its own deadline for the same call; never sooner, however fast the machine.
    assertThat(tookMs).as("ms until unknown").isGreaterThanOrEqualTo(TIMEOUT.toMillis() - 100)
        .isLessThan(TIMEOUT.toMillis() + LATE_MS);
    assertThat(chargesAt(request.providerKey())).isEqualTo(1);
  }

  @Test
  @DisplayName("a connection reset after the charge (tok_reset_after_charge) is UNKNOWN, and the charge exists")
  void resetAfterCharge() {
    ChargeRequest request = charge("tok_reset_after_charge");
    try (dev.idemgate.support.CapturedLogs vertx = dev.idemgate.support.CapturedLogs.of("io.vertx.core.net.impl.ConnectionBase")) {
      assertThat(Http.await(provider.charge(request))).isInstanceOf(ProviderOutcome.Unknown.class);
      assertThat(vertx.events()).as("a reset the connector handles is no ERROR line")
          .noneMatch(e -> e.getLevel() == ch.qos.logback.classic.Level.ERROR);
    }
    assertThat(chargesAt(request.providerKey())).isEqualTo(1);
  }

  @Test
  @DisplayName("a request sent into a blackhole is UNKNOWN: the connector cannot know it never arrived")
  void blackhole() {
    proxy.blackhole();
    ChargeRequest request = charge("tok_visa");
    assertThat(Http.await(impatient.charge(request))).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(chargesAt(request.providerKey())).isZero();
  }

  @Test
  @DisplayName("a connection cut while the acquirer works on the charge is UNKNOWN, and the charge still happens")
  void cutInFlight() {
    HttpProvider patient = new HttpProvider(vertx, proxy.httpUrl(), Duration.ofMillis(SLOW_MS + LATE_MS), HttpProvider.BreakerSettings.DEFAULT);
    ChargeRequest request = charge("tok_slow");
    var outcome = patient.charge(request);
    awaitOpenConnections(1);
    // Cut only once the acquirer has the request: an open connection alone may not have carried it
    // yet, and a cut before it arrives rightly charges nothing (that is the blackhole case).
    eventually(Duration.ofSeconds(5), () -> log(request.providerKey()).getInteger("requests") == 1,
        "the acquirer received the charge");
    assertThat(proxy.cutAll()).isEqualTo(1);
    assertThat(Http.await(outcome)).isInstanceOf(ProviderOutcome.Unknown.class);
    eventually(Duration.ofMillis(SLOW_MS + LATE_MS), () -> chargesAt(request.providerKey()) == 1,
        "the acquirer charged the card whose connection was cut");
    Http.await(patient.close());
  }

  private void awaitOpenConnections(int n) {
    eventually(Duration.ofSeconds(5), () -> proxy.openConnections() >= n, n + " connections open through the proxy");
  }

  @Test
  @DisplayName("after repeated refusals the circuit opens and answers NOT_ATTEMPTED without connecting, then closes again")
  void circuitBreaker() {
    // Open long enough for the checks while it is open, however slow the machine; they take a few ms.
    Duration open = Duration.ofSeconds(2);
    HttpProvider guarded = provider(proxy.httpUrl(), new HttpProvider.BreakerSettings(3, open, Duration.ofSeconds(10)));
    proxy.refuse();
    for (int i = 0; i < 3; i++) {
      assertThat(Http.await(guarded.charge(charge("tok_visa")))).isInstanceOf(ProviderOutcome.NotAttempted.class);
    }
    assertThat(guarded.circuitState()).isEqualTo(CircuitBreakerState.OPEN);
    proxy.pass();
    long acceptedBefore = proxy.acceptedConnections();
    ChargeRequest whileOpen = charge("tok_visa");
    ProviderOutcome outcome = Http.await(guarded.charge(whileOpen));
    assertThat(outcome).isInstanceOf(ProviderOutcome.NotAttempted.class);
    ProviderOutcome.NotAttempted refused = (ProviderOutcome.NotAttempted) outcome;
    assertThat(refused.reason()).isEqualTo("provider circuit open");
    assertThat(refused.retryAfterSeconds()).as("whole seconds left of the 2 s open, rounded up").isBetween(1, 2);
    assertThat(proxy.acceptedConnections()).isEqualTo(acceptedBefore);
    assertThat(log(whileOpen.providerKey()).getInteger("requests")).isZero();
    // Inquiries have a circuit of their own: the charges' one open does not stop them.
    assertThat(Http.await(guarded.inquire(about(whileOpen.providerKey())))).isInstanceOf(ProviderOutcome.NotAttempted.class);

    eventually(open.plusMillis(LATE_MS), () -> guarded.circuitState() == CircuitBreakerState.HALF_OPEN,
        "the circuit half-open after its reset timeout");
    assertThat(Http.await(guarded.charge(charge("tok_visa")))).isInstanceOf(ProviderOutcome.Succeeded.class);
    assertThat(guarded.circuitState()).isEqualTo(CircuitBreakerState.CLOSED);
    Http.await(guarded.close());
  }

  @Test
  @DisplayName("a 429's Retry-After is the refusal's; once the refusals open the circuit, the later of it and the "
      + "circuit's reopening; a 429 without one says nothing")
  void rateLimitedSaysTheAcquirersDelay() {
    java.util.concurrent.atomic.AtomicReference<String> retryAfter = new java.util.concurrent.atomic.AtomicReference<>();
    io.vertx.core.http.HttpServer limiting = Http.await(vertx.createHttpServer().requestHandler(request -> {
      var response = request.response().setStatusCode(429);
      if (retryAfter.get() != null) {
        response.putHeader("Retry-After", retryAfter.get());
      }
      response.end("{}");
    }).listen(0, "127.0.0.1"));
    String url = "http://127.0.0.1:" + limiting.actualPort();
    try {
      HttpProvider closed = provider(url, HttpProvider.BreakerSettings.DEFAULT);
      assertThat(Http.await(closed.charge(charge("tok_visa"))))
          .isEqualTo(new ProviderOutcome.NotAttempted("acquirer refused before accepting (429)", 0));
      retryAfter.set("120");
      assertThat(Http.await(closed.charge(charge("tok_visa"))))
          .isEqualTo(new ProviderOutcome.NotAttempted("acquirer refused before accepting (429)", 120));
      Http.await(closed.close());

      // One refusal opens these circuits.
      HttpProvider shortCircuit = provider(url, new HttpProvider.BreakerSettings(1, Duration.ofSeconds(2), Duration.ofSeconds(10)));
      ProviderOutcome opening = Http.await(shortCircuit.charge(charge("tok_visa")));
      assertThat(shortCircuit.circuitState()).isEqualTo(CircuitBreakerState.OPEN);
      assertThat(((ProviderOutcome.NotAttempted) opening).retryAfterSeconds()).as("the acquirer's 120, not the circuit's 2")
          .isEqualTo(120);
      Http.await(shortCircuit.close());

      retryAfter.set("3");
      HttpProvider longCircuit = provider(url, new HttpProvider.BreakerSettings(1, Duration.ofSeconds(30), Duration.ofSeconds(10)));
      opening = Http.await(longCircuit.charge(charge("tok_visa")));
      assertThat(((ProviderOutcome.NotAttempted) opening).retryAfterSeconds()).as("the circuit's 30 s, not the acquirer's 3")
          .isBetween(29, 30);
      Http.await(longCircuit.close());
    } finally {
      Http.await(limiting.close());
    }
  }

  @Test
  @DisplayName("refusals of a malformed request do not open the circuit")
  void badRequestsKeepCircuitClosed() {
    HttpProvider guarded = provider(proxy.httpUrl(), new HttpProvider.BreakerSettings(2, Duration.ofSeconds(5), Duration.ofSeconds(10)));
    for (int i = 0; i < 4; i++) {
      Http.await(guarded.charge(new ChargeRequest("pk-" + UUID.randomUUID(), 1, "EURO", "tok_visa", "pay_x")));
    }
    assertThat(guarded.circuitState()).isEqualTo(CircuitBreakerState.CLOSED);
    Http.await(guarded.close());
  }

  @Test
  @DisplayName("an inquiry finds a charge whose answer was lost")
  void inquiryFindsLostCharge() {
    ChargeRequest request = charge("tok_timeout_after_charge");
    Http.await(impatient.charge(request));
    ProviderOutcome found = Http.await(provider.inquire(about(request.providerKey())));
    assertThat(found).isInstanceOf(ProviderOutcome.Succeeded.class);
  }

  @Test
  @DisplayName("an inquiry while the acquirer is still working on the charge is UNKNOWN; once it charged, SUCCEEDED")
  void inquiryWhileInProgress() {
    HttpProvider patient = new HttpProvider(vertx, proxy.httpUrl(), Duration.ofMillis(SLOW_MS + LATE_MS), HttpProvider.BreakerSettings.DEFAULT);
    ChargeRequest request = charge("tok_slow");
    var charging = patient.charge(request);
    // Asked once the acquirer has the request, and SLOW_MS before it charges: time enough for one inquiry.
    eventually(Duration.ofSeconds(5), () -> log(request.providerKey()).getInteger("requests") == 1,
        "the acquirer received the charge");
    assertThat(Http.await(provider.inquire(about(request.providerKey())))).isInstanceOf(ProviderOutcome.Unknown.class);
    assertThat(Http.await(charging)).isInstanceOf(ProviderOutcome.Succeeded.class);
    assertThat(Http.await(provider.inquire(about(request.providerKey())))).isInstanceOf(ProviderOutcome.Succeeded.class);
    Http.await(patient.close());
  }

  @Test
  @DisplayName("an inquiry of a key the acquirer never charged is NOT_ATTEMPTED")
  void inquiryOfUnknownKey() {
    assertThat(Http.await(provider.inquire(about("pk-never-" + UUID.randomUUID())))).isInstanceOf(ProviderOutcome.NotAttempted.class);
  }

  @Test
  @DisplayName("an inquiry that cannot reach the acquirer is UNKNOWN, never NOT_ATTEMPTED")
  void inquiryUnreachable() {
    ChargeRequest request = charge("tok_timeout_after_charge");
    Http.await(impatient.charge(request));
    proxy.refuse();
    assertThat(Http.await(provider.inquire(about(request.providerKey())))).isInstanceOf(ProviderOutcome.Unknown.class);
    proxy.blackhole();
    assertThat(Http.await(impatient.inquire(about(request.providerKey())))).isInstanceOf(ProviderOutcome.Unknown.class);
  }
  @Test
  @DisplayName("the connections to the acquirer are provider_max_connections: 12 one-second charges at once fit in 12, "
      + "not in 3 (those left waiting past the connect timeout are not attempted)")
  void connectionsBoundConcurrentCharges() {
    AcquirerServer slow = new AcquirerServer(0, 1_000, SLOW_MS, false);
    Http.await(vertx.deployVerticle(slow));
    String url = "http://127.0.0.1:" + slow.actualPort();
    for (int connections : new int[] {3, 12}) {
      HttpProvider pool = new HttpProvider(vertx, url, Duration.ofSeconds(5), connections, HttpProvider.BreakerSettings.DEFAULT);
      try {
        List<Future<ProviderOutcome>> charges = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
          charges.add(pool.charge(charge("tok_visa")));
        }
        // Every connection stays busy for the acquirer's 1 s: seen at the first look on a quiet machine.
        // The limit only bounds how late the connections may open on a loaded one (it was 1 s, as long
        // as the charges themselves, and could run out before twelve were open).
        eventually(Duration.ofSeconds(5), () -> pool.busyConnections() == connections, "every connection busy");
        Http.await(Future.join(charges));
        assertThat(pool.busyConnections()).as("all given back").isZero();
        long succeeded = charges.stream().filter(f -> f.result() instanceof ProviderOutcome.Succeeded).count();
        long notAttempted = charges.stream().filter(f -> f.result() instanceof ProviderOutcome.NotAttempted).count();
        if (connections == 12) {
          assertThat(succeeded).as("12 connections").isEqualTo(12);
          assertThat(pool.poolFullRefusals()).isZero();
        } else {
          // 3 at a time for 1 s each: the fourth wave would start after 3 s, past the 2 s connect timeout.
          assertThat(notAttempted).as("3 connections").isGreaterThanOrEqualTo(3);
          assertThat(pool.poolFullRefusals()).as("counted as the pool's refusals").isEqualTo(notAttempted);
          assertThat(succeeded + notAttempted).isEqualTo(12);
          // Waiting for one of the pod's own connections is its load, not the acquirer's trouble:
          // counted (5 failures open the default breaker), every later charge would be refused.
          assertThat(pool.circuitState()).as("the charges' circuit").isEqualTo(CircuitBreakerState.CLOSED);
        }
      } finally {
        Http.await(pool.close());
      }
    }
  }

  @Test
  @DisplayName("an inquiry that could not be sent because every connection stayed busy is an unknown outcome, "
      + "never the acquirer's \"never seen\" (which would free the key for a second charge)")
  void inquiryNotSentIsUnknown() {
    AcquirerServer slow = new AcquirerServer(0, 1_000, SLOW_MS, false);
    Http.await(vertx.deployVerticle(slow));
    HttpProvider pool = new HttpProvider(vertx, "http://127.0.0.1:" + slow.actualPort(), Duration.ofSeconds(5), 1,
        HttpProvider.BreakerSettings.DEFAULT);
    try {
      List<Future<ProviderOutcome>> charges = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        charges.add(pool.charge(charge("tok_visa")));
      }
      // The one connection is busy for 4 s; the inquiry waits past the 2 s connect timeout.
      ProviderOutcome inquiry = Http.await(pool.inquire(about("never-charged-" + Http.newKey())));
      assertThat(inquiry).isInstanceOf(ProviderOutcome.Unknown.class);
      assertThat(pool.poolFullRefusals()).isPositive();
      Http.await(Future.join(charges));
    } finally {
      Http.await(pool.close());
    }
  }

  /** A server that answers charges and inquiries as told, counting the inquiries it got. */
  private static final class ScriptedAcquirer {
    final java.util.concurrent.atomic.AtomicInteger inquiries = new java.util.concurrent.atomic.AtomicInteger();
    final io.vertx.core.http.HttpServer server;

    ScriptedAcquirer(Vertx vertx, int inquiryStatus, io.vertx.core.buffer.Buffer chargeAnswer, io.vertx.core.buffer.Buffer inquiryAnswer) {
      server = Http.await(vertx.createHttpServer().requestHandler(request -> {
        if (request.method() == io.vertx.core.http.HttpMethod.GET) {
          inquiries.incrementAndGet();
          request.response().setStatusCode(inquiryStatus).end(inquiryAnswer);
        } else {
          request.body().onSuccess(b -> request.response().setStatusCode(200).end(chargeAnswer));
        }
      }).listen(0));
    }

    String url() {
      return "http://127.0.0.1:" + server.actualPort();
    }
  }

  @Test
  @DisplayName("an answer over 64 KiB is cut off and read as no answer: UNKNOWN for a charge and for an inquiry")
  void oversizedAnswer() {
    io.vertx.core.buffer.Buffer huge = io.vertx.core.buffer.Buffer.buffer("{\"id\":\"ch_1\",\"status\":\"succeeded\",\"pad\":\""
        + "x".repeat(1024 * 1024) + "\"}");
    ScriptedAcquirer scripted = new ScriptedAcquirer(vertx, 200, huge, huge);
    HttpProvider guarded = provider(scripted.url(), HttpProvider.BreakerSettings.DEFAULT);
    try {
      ChargeRequest request = charge("tok_visa");
      assertThat(Http.await(guarded.charge(request))).isInstanceOf(ProviderOutcome.Unknown.class);
      assertThat(Http.await(guarded.inquire(about(request.providerKey())))).isInstanceOf(ProviderOutcome.Unknown.class);
    } finally {
      Http.await(guarded.close());
      Http.await(scripted.server.close());
    }
  }

  @Test
  @DisplayName("failing inquiries open the inquiries' circuit only: charges go on, and inquiries stop reaching the acquirer")
  void inquiryTroubleLeavesChargesAlone() {
    io.vertx.core.buffer.Buffer charged = new JsonObject().put("id", "ch_1").put("status", "succeeded").toBuffer();
    ScriptedAcquirer scripted = new ScriptedAcquirer(vertx, 500, charged, io.vertx.core.buffer.Buffer.buffer("oops"));
    HttpProvider guarded = provider(scripted.url(), new HttpProvider.BreakerSettings(3, Duration.ofSeconds(30), Duration.ofSeconds(10)));
    try {
      for (int i = 0; i < 3; i++) {
        assertThat(Http.await(guarded.inquire(about("pk-" + i)))).isInstanceOf(ProviderOutcome.Unknown.class);
      }
      assertThat(guarded.inquiryCircuitState()).isEqualTo(CircuitBreakerState.OPEN);
      assertThat(guarded.circuitState()).isEqualTo(CircuitBreakerState.CLOSED);
      assertThat(Http.await(guarded.charge(charge("tok_visa")))).isEqualTo(new ProviderOutcome.Succeeded("ch_1"));
      assertThat(Http.await(guarded.inquire(about("pk-while-open")))).isInstanceOf(ProviderOutcome.Unknown.class);
      assertThat(scripted.inquiries.get()).as("no inquiry sent while its circuit is open").isEqualTo(3);
    } finally {
      Http.await(guarded.close());
      Http.await(scripted.server.close());
    }
  }

  @Test
  @DisplayName("an interim answer (102 Processing) is UNKNOWN, and the final answer after it is never read as the "
      + "next charge's on the same connection")
  void interimAnswerEndsItsConnection() throws Exception {
    ChargeRequest first = charge("tok_visa");
    try (InterimThenFinalAcquirer acquirer = new InterimThenFinalAcquirer(first.providerKey())) {
      HttpProvider oneConnection = new HttpProvider(vertx, acquirer.url(), ANSWERED_WITHIN, 1,
          HttpProvider.BreakerSettings.DEFAULT);
      try {
        assertThat(Http.await(oneConnection.charge(first))).isInstanceOf(ProviderOutcome.Unknown.class);
        ChargeRequest next = charge("tok_visa");
        assertThat(Http.await(oneConnection.charge(next))).as("the next charge's own answer")
            .isEqualTo(new ProviderOutcome.Succeeded("ch_" + next.providerKey()));
      } finally {
        Http.await(oneConnection.close());
      }
    }
  }

  /**
   * An acquirer on a plain socket: it answers a charge under {@code slowKey} with 102 Processing
   * only, and sends that charge's final 200 just before the answer to the next request on the same
   * connection. Any other charge gets its own 200 with the charge id {@code ch_<provider key>}.
   */
  private static final class InterimThenFinalAcquirer implements AutoCloseable {
    private final ServerSocket listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    private final String slowKey;
    private final List<Socket> accepted = new java.util.concurrent.CopyOnWriteArrayList<>();

    InterimThenFinalAcquirer(String slowKey) throws IOException {
      this.slowKey = slowKey;
      Thread acceptor = new Thread(() -> {
        try {
          while (true) {
            Socket socket = listener.accept();
            accepted.add(socket);
            Thread serve = new Thread(() -> serve(socket), "interim-acquirer-connection");
            serve.setDaemon(true);
            serve.start();
          }
        } catch (IOException closed) {
          // the listener was closed
        }
      }, "interim-acquirer");
      acceptor.setDaemon(true);
      acceptor.start();
    }

    String url() {
      return "http://127.0.0.1:" + listener.getLocalPort();
    }

    private void serve(Socket socket) {
      try (socket) {
        java.io.BufferedInputStream in = new java.io.BufferedInputStream(socket.getInputStream());
        java.io.OutputStream out = socket.getOutputStream();
        boolean slowAnswerOwed = false;
        String key;
        while ((key = readRequest(in)) != null) {
          if (key.equals(slowKey)) {
            out.write("HTTP/1.1 102 Processing\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            slowAnswerOwed = true;
          } else {
            if (slowAnswerOwed) {
              out.write(answer(slowKey));
              slowAnswerOwed = false;
            }
            out.write(answer(key));
          }
          out.flush();
        }
      } catch (IOException e) {
        // the client closed the connection
      }
    }

    /** Reads one request; its Idempotency-Key, or null at the end of the stream. */
    private static String readRequest(java.io.BufferedInputStream in) throws IOException {
      String key = null;
      int length = 0;
      String line;
      while ((line = readLine(in)) != null && !line.isEmpty()) {
        int colon = line.indexOf(':');
        if (colon > 0 && line.substring(0, colon).equalsIgnoreCase("Idempotency-Key")) {
          key = line.substring(colon + 1).trim();
        } else if (colon > 0 && line.substring(0, colon).equalsIgnoreCase("Content-Length")) {
          length = Integer.parseInt(line.substring(colon + 1).trim());
        }
      }
      if (line == null) {
        return null;
      }
      in.readNBytes(length);
      return key;
    }

    private static String readLine(java.io.BufferedInputStream in) throws IOException {
      StringBuilder line = new StringBuilder();
      int c;
      while ((c = in.read()) != -1) {
        if (c == '\n') {
          return line.toString().strip();
        }
        line.append((char) c);
      }
      return null;
    }

    private static byte[] answer(String key) {
      String body = new JsonObject().put("id", "ch_" + key).put("status", "succeeded").put("amount", 1999)
          .put("currency", "EUR").encode();
      return ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + body.length() + "\r\n\r\n" + body)
          .getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    }

    @Override
    public void close() throws IOException {
      listener.close();
      for (Socket socket : accepted) {
        socket.close();
      }
    }
  }
}
