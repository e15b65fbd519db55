package dev.idemgate.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * A Redis Cluster of the test's own: three masters ({@code redis-server --cluster-enabled yes}, no
 * persistence), with or without a replica each, every node on a free port with its data dir in a
 * temp directory, the 16,384 slots split between the masters. It is built with plain commands
 * ({@code CLUSTER ADDSLOTSRANGE}, {@code CLUSTER MEET}, {@code CLUSTER REPLICATE}), so it needs
 * nothing but {@code redis-server} 7.
 */
public final class ThrowawayRedisCluster implements AutoCloseable {
  private static final int MASTERS = 3;
  private static final int SLOTS = 16_384;
  private static final Duration STARTUP = Duration.ofSeconds(30);
  /** A CLIENT LIST line of a connection subscribed to a channel or more; group 1 its id. */
  private static final Pattern SUBSCRIBED_CLIENT = Pattern.compile("\\bid=(\\d+) .*\\bsub=[1-9]");

  private final Path dir;
  private final boolean withReplicas;
  /** Masters first, then (with replicas) the replica of master i at MASTERS + i. */
  private final List<Integer> ports = new ArrayList<>();
  /** Each node's cluster bus port, by the index of its port in {@link #ports}. */
  private final List<Integer> busPorts = new ArrayList<>();
  private final List<ChildProcess> processes = new ArrayList<>();

  private ThrowawayRedisCluster(Path dir, boolean withReplicas) {
    this.dir = dir;
    this.withReplicas = withReplicas;
  }

  /** Starts three masters, gives each a third of the slots, and waits until the cluster is ok on every node. */
  public static ThrowawayRedisCluster start() {
    return start(false);
  }

  /**
   * Like {@link #start()}, with a replica for each master, so that a master's death is a failover
   * (the cluster promotes its replica after two seconds without an answer).
   */
  public static ThrowawayRedisCluster startWithReplicas() {
    return start(true);
  }

  private static ThrowawayRedisCluster start(boolean withReplicas) {
    ThrowawayRedisCluster cluster;
    try {
      cluster = new ThrowawayRedisCluster(Files.createTempDirectory("idemgate-redis-cluster-"), withReplicas);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    try {
      cluster.launch();
      return cluster;
    } catch (RuntimeException e) {
      cluster.close();
      throw e;
    }
  }

  private void launch() {
    int nodes = withReplicas ? 2 * MASTERS : MASTERS;
    String nodeTimeout = withReplicas ? "2000" : "5000";
    for (int i = 0; i < nodes; i++) {
      int port = TestGateway.freePort();
      Path nodeDir = dir.resolve(String.valueOf(port));
      try {
        Files.createDirectories(nodeDir);
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
      ports.add(port);
      // The cluster bus gets a free port of its own: by default it is the port + 10,000, which lands
      // in the kernel's ephemeral range, where an outgoing connection may hold it (seen: 41322).
      int busPort = TestGateway.freePort();
      busPorts.add(busPort);
      processes.add(ChildProcess.start("redis-cluster:" + port, List.of("redis-server", "--port", String.valueOf(port),
          "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", nodeDir.toString(),
          "--cluster-enabled", "yes", "--cluster-port", String.valueOf(busPort), "--cluster-config-file", "nodes.conf",
          "--cluster-node-timeout", nodeTimeout),
          Map.of(), nodeDir.resolve("redis.log")));
    }
    awaitAll("PONG", "PING");
    for (int i = 0; i < MASTERS; i++) {
      int first = SLOTS * i / MASTERS;
      int last = SLOTS * (i + 1) / MASTERS - 1;
      expectOk(RespCommand.call(ports.get(i), "CLUSTER", "ADDSLOTSRANGE", String.valueOf(first), String.valueOf(last)));
    }
    for (int i = 1; i < nodes; i++) {
      expectOk(RespCommand.call(ports.get(0), "CLUSTER", "MEET", "127.0.0.1", String.valueOf(ports.get(i)),
          String.valueOf(busPorts.get(i))));
    }
    if (withReplicas) {
      awaitAll("cluster_known_nodes:" + nodes, "CLUSTER", "INFO");
      for (int i = 0; i < MASTERS; i++) {
        String masterId = RespCommand.call(ports.get(i), "CLUSTER", "MYID");
        expectOk(RespCommand.call(ports.get(MASTERS + i), "CLUSTER", "REPLICATE", masterId));
      }
      awaitAll(ports.subList(MASTERS, nodes), "master_link_status:up", "INFO", "replication");
    }
    awaitAll("cluster_state:ok", "CLUSTER", "INFO");
  }

  /** SIGKILL of master {@code i} (0-2): with replicas, the cluster then promotes {@link #replicaPort(int)}. */
  public void killMaster(int i) {
    processes.get(i).kill();
  }

  /** The port of master {@code i}'s replica. */
  public int replicaPort(int i) {
    if (!withReplicas) {
      throw new IllegalStateException("started without replicas");
    }
    return ports.get(MASTERS + i);
  }

  /** Whether every node still alive says the cluster is ok and the replica of master {@code i} is a master now. */
  public boolean failedOver(int i) {
    boolean promoted = String.valueOf(RespCommand.call(replicaPort(i), "INFO", "replication")).contains("role:master");
    return promoted && ports.stream().filter(port -> port != ports.get(i))
        .allMatch(port -> String.valueOf(RespCommand.call(port, "CLUSTER", "INFO")).contains("cluster_state:ok"));
  }

  private void awaitAll(String expected, String... command) {
    awaitAll(ports, expected, command);
  }

  private void awaitAll(List<Integer> which, String expected, String... command) {
    long deadline = System.nanoTime() + STARTUP.toNanos();
    for (int port : which) {
      while (!String.valueOf(RespCommand.call(port, command)).contains(expected)) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("redis cluster node " + port + " never answered " + expected + " to "
              + String.join(" ", command) + ":\n" + processes.get(ports.indexOf(port)).logTail());
        }
        ChildProcess.sleep(100);
      }
    }
  }

  private static void expectOk(String reply) {
    if (!"OK".equals(reply)) {
      throw new IllegalStateException("redis cluster set-up: expected OK, got " + reply);
    }
  }

  /** {@code redis://127.0.0.1:<port>} of every node, comma-separated: the value for {@code IDEMGATE_REDIS_URL}. */
  public String urls() {
    return ports.stream().map(port -> "redis://127.0.0.1:" + port).collect(Collectors.joining(","));
  }

  /** The masters' ports (the nodes a cluster client subscribes on). */
  public List<Integer> masterPorts() {
    return List.copyOf(ports.subList(0, MASTERS));
  }

  /**
   * The client connections subscribed to at least one channel, as {@code port/id} of each over every
   * node: a connection closed and opened again shows as another id.
   */
  public SortedSet<String> subscriberConnections() {
    SortedSet<String> found = new TreeSet<>();
    for (int port : ports) {
      String list = String.valueOf(RespCommand.call(port, "CLIENT", "LIST"));
      for (String line : list.split("\n")) {
        Matcher client = SUBSCRIBED_CLIENT.matcher(line);
        if (client.find()) {
          found.add(port + "/" + client.group(1));
        }
      }
    }
    return found;
  }

  /** How many channels matching {@code pattern} have subscribers, summed over the nodes (PUBSUB CHANNELS is per node). */
  public int subscribedChannels(String pattern) {
    int sum = 0;
    for (int port : ports) {
      sum += Integer.parseInt(RespCommand.call(port, "PUBSUB", "CHANNELS", pattern)); // an array: its length
    }
    return sum;
  }

  /** How many keys each node holds ({@code DBSIZE}), in node order. */
  public List<Long> keysPerNode() {
    List<Long> sizes = new ArrayList<>();
    for (int port : ports) {
      String reply = RespCommand.call(port, "DBSIZE");
      sizes.add(reply == null ? -1 : Long.parseLong(reply));
    }
    return sizes;
  }

  @Override
  public void close() {
    processes.forEach(ChildProcess::close);
    Cleanup.deleteTree(dir);
  }
}
