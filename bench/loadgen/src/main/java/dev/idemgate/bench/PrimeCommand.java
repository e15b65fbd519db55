package dev.idemgate.bench;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpClient;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Completes keys {@code prefix-0 … prefix-(n-1)} so that the replay scenarios have something to replay. */
@Command(name = "prime", mixinStandardHelpOptions = true,
    description = "Create N completed payments (keys PREFIX-0 … PREFIX-(N-1)) for the replay scenarios.")
final class PrimeCommand implements Callable<Integer> {
  @Mixin TargetOptions target;

  @Option(names = "--keys", defaultValue = "1000", description = "How many keys. Default: ${DEFAULT-VALUE}.")
  int keys;

  @Override
  public Integer call() throws Exception {
    if (target.keyPrefix == null) {
      throw new IllegalArgumentException("prime needs --key-prefix (the replay run must use the same one)");
    }
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1));
    try {
      HttpClient client = target.client(vertx);
      PaymentTraffic traffic = new PaymentTraffic(target.keyPrefix, 0);
      AtomicLong next = new AtomicLong();
      Map<Integer, Long> statuses = new TreeMap<>();
      List<Future<Void>> workers = new ArrayList<>();
      for (int w = 0; w < Math.min(target.connections, keys); w++) {
        workers.add(worker(client, traffic, next, statuses));
      }
      Future.all(workers).toCompletionStage().toCompletableFuture().get(10, TimeUnit.MINUTES);
      boolean allCreated = statuses.getOrDefault(201, 0L) == keys;
      System.out.println("primed " + keys + " keys with prefix " + target.keyPrefix + ": " + statuses);
      return allCreated ? 0 : 1;
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  /** A closed loop: the next key only after the previous answer. */
  private Future<Void> worker(HttpClient client, PaymentTraffic traffic, AtomicLong next, Map<Integer, Long> statuses) {
    long sequence = next.getAndIncrement();
    if (sequence >= keys) {
      return Future.succeededFuture();
    }
    return target.pay(client, traffic.key(sequence), traffic.body(sequence))
        .map(response -> response.statusCode())
        .compose(status -> {
          synchronized (statuses) {
            statuses.merge(status, 1L, Long::sum);
          }
          return worker(client, traffic, next, statuses);
        });
  }
}
