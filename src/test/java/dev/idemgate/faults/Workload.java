package dev.idemgate.faults;

import dev.idemgate.support.ClientHistory;
import dev.idemgate.support.Http;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.IntSupplier;

/**
 * Checkout traffic for fault scenarios: new payments with fresh keys, a share of duplicate retries
 * of earlier keys (same key, same body), some declines; every request and answer goes into the
 * {@link ClientHistory}. Bounded in time and in requests in flight.
 */
final class Workload {
  /** One payment a client started: its key and its body, to retry with. */
  record Payment(String key, JsonObject body) {}

  private final Http http;
  private final ClientHistory history;
  private final String merchant;
  private final String apiKey;
  private final IntSupplier port;
  private final List<Payment> issued = Collections.synchronizedList(new ArrayList<>());

  /** @param port the gateway to send each request to (several gateways: pick one per call) */
  Workload(Http http, ClientHistory history, String merchant, String apiKey, IntSupplier port) {
    this.http = http;
    this.history = history;
    this.merchant = merchant;
    this.apiKey = apiKey;
    this.port = port;
  }

  /**
   * Sends for {@code duration} with at most {@code concurrency} requests in flight and at most
   * {@code ratePerSecond} new requests a second (so that a dead gateway is not flooded with
   * thousands of refused payments); returns the requests sent.
   */
  int run(Duration duration, int concurrency, int ratePerSecond, double duplicateRate, Random random)
      throws InterruptedException {
    Semaphore inFlight = new Semaphore(concurrency);
    long start = System.nanoTime();
    long end = start + duration.toNanos();
    long interval = 1_000_000_000L / ratePerSecond;
    int sent = 0;
    while (System.nanoTime() < end) {
      long due = start + sent * interval;
      long wait = due - System.nanoTime();
      if (wait > 0) {
        Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
      }
      if (!inFlight.tryAcquire(100, TimeUnit.MILLISECONDS)) {
        continue;
      }
      Payment payment;
      synchronized (issued) {
        payment = !issued.isEmpty() && random.nextDouble() < duplicateRate
            ? issued.get(random.nextInt(issued.size()))
            : newPayment(random);
      }
      sent++;
      history.payAsync(http, port.getAsInt(), merchant, apiKey, payment.key(), payment.body(), Map.of())
          .onComplete(done -> inFlight.release());
    }
    if (!inFlight.tryAcquire(concurrency, 60, TimeUnit.SECONDS)) {
      throw new AssertionError("requests still in flight 60 s after the workload ended");
    }
    return sent;
  }

  private Payment newPayment(Random random) {
    String token = random.nextInt(20) == 0 ? "tok_decline" : "tok_visa";
    Payment payment = new Payment(Http.newKey(), Http.payment(100 + random.nextInt(100_000), token));
    issued.add(payment);
    return payment;
  }

  /**
   * Retries every payment whose last answer was not definite (pending, in flight, no response, 5xx)
   * until it is, as a client that cares about its money would; gives up at the deadline.
   */
  void settle(Duration limit) throws InterruptedException {
    long deadline = System.nanoTime() + limit.toNanos();
    List<Payment> open = new ArrayList<>(issued);
    while (!open.isEmpty() && System.nanoTime() < deadline) {
      List<Payment> still = Collections.synchronizedList(new ArrayList<>());
      Semaphore inFlight = new Semaphore(32);
      for (Payment p : open) {
        inFlight.acquire();
        history.payAsync(http, port.getAsInt(), merchant, apiKey, p.key(), p.body(), Map.of()).onComplete(done -> {
          Http.Reply reply = done.succeeded() ? done.result() : null;
          if (reply == null || reply.status() == 202 || reply.status() == 409
              || reply.status() >= 500 && reply.status() != 502) {
            still.add(p);
          }
          inFlight.release();
        });
      }
      inFlight.acquire(32);
      open = new ArrayList<>(still);
      if (!open.isEmpty()) {
        Thread.sleep(300);
      }
    }
    if (!open.isEmpty()) {
      throw new AssertionError(open.size() + " payments never settled, e.g. key " + open.get(0).key());
    }
  }

  List<Payment> issued() {
    return List.copyOf(issued);
  }
}
