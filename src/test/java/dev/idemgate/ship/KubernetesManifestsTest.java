package dev.idemgate.ship;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.autoscaling.v2.MetricSpec;
import io.fabric8.kubernetes.api.model.networking.v1.Ingress;
import io.fabric8.kubernetes.api.model.networking.v1.IngressBackend;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyIngressRule;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.exc.UnrecognizedPropertyException;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * Every manifest under {@code k8s/} loads through fabric8's Kubernetes model with unknown fields
 * failing, and the manifests agree with each other and with the gateway (ports, probe paths, names,
 * the drain time). Prometheus Operator kinds, which fabric8's core model does not cover, are checked
 * against the fields of their published API.
 */
class KubernetesManifestsTest {
  private static final Path K8S = Path.of("k8s");
  private static final YAMLMapper STRICT = StrictKubernetesYaml.strict();
  private static final Duration DEFAULT_DRAIN = Duration.ofSeconds(20);

  /** apiVersion + kind → the fabric8 class it must load as. */
  private static final Map<String, Class<? extends HasMetadata>> TYPED = Map.ofEntries(
      Map.entry("v1/Namespace", Namespace.class),
      Map.entry("v1/ServiceAccount", ServiceAccount.class),
      Map.entry("v1/Service", Service.class),
      Map.entry("v1/Secret", Secret.class),
      Map.entry("v1/ConfigMap", ConfigMap.class),
      Map.entry("apps/v1/Deployment", Deployment.class),
      Map.entry("networking.k8s.io/v1/Ingress", Ingress.class),
      Map.entry("networking.k8s.io/v1/NetworkPolicy", NetworkPolicy.class),
      Map.entry("autoscaling/v2/HorizontalPodAutoscaler", HorizontalPodAutoscaler.class),
      Map.entry("policy/v1/PodDisruptionBudget", PodDisruptionBudget.class));

  /** Custom resources, loaded generically, then checked field by field against their API reference. */
  private static final Set<String> PROMETHEUS_OPERATOR = Set.of(
      "monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule");

  private static final Map<String, HasMetadata> byFile = new LinkedHashMap<>();
  private static JsonNode kustomization;

  @BeforeAll
  static void loadEverything() throws IOException {
    for (Path file : manifestFiles()) {
      try {
        byFile.put(file.getFileName().toString(), load(file));
      } catch (RuntimeException e) {
        throw new AssertionError(file + " does not load strictly: " + e.getMessage(), e);
      }
    }
    kustomization = STRICT.readTree(K8S.resolve("kustomization.yaml").toFile());
  }

  private static List<Path> manifestFiles() throws IOException {
    try (Stream<Path> files = Files.list(K8S)) {
      return files.filter(f -> f.toString().endsWith(".yaml"))
          .filter(f -> !f.getFileName().toString().equals("kustomization.yaml"))
          .filter(f -> !isGeneratorInput(f))
          .sorted().toList();
    }
  }

  /** Files that feed a configMapGenerator are data, not manifests. */
  private static boolean isGeneratorInput(Path file) {
    return file.getFileName().toString().equals("idemgate.yaml");
  }

  private static HasMetadata load(Path file) throws IOException {
    JsonNode tree = STRICT.readTree(file.toFile());
    String type = tree.path("apiVersion").asString() + "/" + tree.path("kind").asString();
    if (TYPED.containsKey(type)) {
      return STRICT.treeToValue(tree, TYPED.get(type));
    }
    if (PROMETHEUS_OPERATOR.contains(type)) {
      return STRICT.treeToValue(tree, GenericKubernetesResource.class);
    }
    throw new AssertionError(file + ": " + type + " has no model in this test; add it to TYPED");
  }

  @SuppressWarnings("unchecked")
  private static <T extends HasMetadata> T only(Class<T> type) {
    List<HasMetadata> found = byFile.values().stream().filter(type::isInstance).toList();
    assertThat(found).as("exactly one %s", type.getSimpleName()).hasSize(1);
    return (T) found.get(0);
  }

  private static GenericKubernetesResource custom(String kind) {
    List<GenericKubernetesResource> found = byFile.values().stream()
        .filter(r -> r instanceof GenericKubernetesResource g && g.getKind().equals(kind))
        .map(r -> (GenericKubernetesResource) r).toList();
    assertThat(found).as("exactly one %s", kind).hasSize(1);
    return found.get(0);
  }

  // ---- strict loading itself

  @Test
  @DisplayName("fabric8 alone keeps a misspelt field in additionalProperties; the strict mapper rejects it, nested ones too")
  void typosFail() {
    String typo = """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: x}
        spec:
          selector: {matchLabels: {app: x}}
          template:
            metadata: {labels: {app: x}}
            spec:
              terminationGracePeriodSecond: 45
              containers: [{name: x, image: "x:1"}]
        """;
    Deployment lenient = StrictKubernetesYaml.lenient().readValue(typo, Deployment.class);
    assertThat(lenient.getSpec().getTemplate().getSpec().getAdditionalProperties())
        .as("why the strict mapper exists").containsKey("terminationGracePeriodSecond");

    assertThatThrownBy(() -> STRICT.readValue(typo, Deployment.class))
        .isInstanceOf(UnrecognizedPropertyException.class).hasMessageContaining("terminationGracePeriodSecond");

    String nested = typo.replace("terminationGracePeriodSecond: 45", "containers: [{name: x, image: \"x:1\", readinesProbe: {}}]")
        .replace("      containers: [{name: x, image: \"x:1\"}]\n", "");
    assertThatThrownBy(() -> STRICT.readValue(nested, Deployment.class))
        .isInstanceOf(UnrecognizedPropertyException.class).hasMessageContaining("readinesProbe");
  }

  @Test
  @DisplayName("every manifest under k8s/ loads as its fabric8 model with apiVersion and kind kept")
  void everyManifestLoads() throws IOException {
    assertThat(byFile).isNotEmpty();
    for (Map.Entry<String, HasMetadata> entry : byFile.entrySet()) {
      HasMetadata resource = entry.getValue();
      assertThat(resource.getMetadata().getName()).as(entry.getKey() + " metadata.name").isNotBlank();
      assertThat(resource.getApiVersion()).as(entry.getKey()).isNotBlank();
      assertThat(resource.getKind()).as(entry.getKey()).isNotBlank();
      if (!(resource instanceof GenericKubernetesResource)) {
        // Through text, so that a Long field read back compares equal to the int the YAML had.
        JsonNode reserialized = STRICT.readTree(STRICT.writeValueAsString(resource));
        assertThat((Object) reserialized).as(entry.getKey() + " survives a round trip")
            .isEqualTo(STRICT.readTree(K8S.resolve(entry.getKey()).toFile()));
      }
    }
  }

  // ---- kustomization

  @Test
  @DisplayName("the kustomization lists every manifest present, and only those, except the example Secret")
  void kustomizationListsEveryManifest() throws IOException {
    Set<String> listed = new TreeSet<>();
    kustomization.path("resources").forEach(r -> listed.add(r.asString()));
    Set<String> present = manifestFiles().stream().map(f -> f.getFileName().toString())
        .filter(name -> !name.endsWith(".example.yaml")).collect(Collectors.toCollection(TreeSet::new));
    assertThat(listed).isEqualTo(present);
    assertThat(listed).as("applying the example would reset the real Secret to placeholders")
        .noneMatch(name -> name.endsWith(".example.yaml"));
    Set<String> knownKeys = Set.of("apiVersion", "kind", "namespace", "resources", "images", "configMapGenerator",
        "secretGenerator", "generatorOptions", "labels", "patches", "components", "namePrefix", "nameSuffix",
        "replicas", "commonAnnotations");
    kustomization.propertyNames().forEach(key -> assertThat(knownKeys).as("kustomization field").contains(key));
    kustomization.path("configMapGenerator").forEach(generator -> generator.path("files")
        .forEach(file -> assertThat(K8S.resolve(file.asString())).as("generator input").isRegularFile()));
  }

  @Test
  @DisplayName("the ConfigMap is generated from an exact copy of conf/idemgate.yaml and mounted where IDEMGATE_CONFIG points")
  void configMapFromConf() throws IOException {
    assertThat(Files.readString(K8S.resolve("idemgate.yaml")))
        .as("k8s/idemgate.yaml must equal conf/idemgate.yaml (kustomize cannot read outside k8s/): cp conf/idemgate.yaml k8s/")
        .isEqualTo(Files.readString(Path.of("conf", "idemgate.yaml")));
    List<String> generated = new ArrayList<>();
    kustomization.path("configMapGenerator").forEach(g -> {
      if (g.path("files").toString().contains("idemgate.yaml")) {
        generated.add(g.path("name").asString());
      }
    });
    assertThat(generated).hasSize(1);
    PodSpec pod = only(Deployment.class).getSpec().getTemplate().getSpec();
    Volume config = pod.getVolumes().stream().filter(v -> v.getConfigMap() != null).findFirst().orElseThrow();
    assertThat(config.getConfigMap().getName()).isEqualTo(generated.get(0));
    String mountPath = gateway().getVolumeMounts().stream().filter(m -> m.getName().equals(config.getName()))
        .findFirst().orElseThrow().getMountPath();
    assertThat(env(gateway()).get("IDEMGATE_CONFIG")).isEqualTo(mountPath + "/idemgate.yaml");
  }

  @Test
  @DisplayName("images are pinned: no latest tag in the kustomization or the Deployment")
  void noLatestImages() {
    kustomization.path("images").forEach(image -> {
      assertThat(image.path("newTag").asString()).isNotBlank().isNotEqualTo("latest");
      assertThat(image.path("name").asString()).isEqualTo(gateway().getImage());
    });
    assertThat(gateway().getImage()).doesNotEndWith(":latest");
  }

  @Test
  @DisplayName("kubectl kustomize renders the directory: namespaced, image rewritten, hashed ConfigMap wired into the Deployment")
  void kustomizeBuilds() throws Exception {
    Path kubectl = Stream.of(System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator))
        .map(dir -> Path.of(dir, "kubectl")).filter(Files::isExecutable).findFirst().orElse(null);
    Assumptions.assumeTrue(kubectl != null, "kubectl is not installed; the model checks above still ran");
    Process build = new ProcessBuilder(kubectl.toString(), "kustomize", K8S.toString()).redirectErrorStream(true).start();
    String rendered;
    try (var out = build.getInputStream()) {
      rendered = new String(out.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    }
    assertThat(build.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
    assertThat(build.exitValue()).as(rendered).isZero();

    List<HasMetadata> objects = new ArrayList<>();
    try (var documents = STRICT.readerFor(JsonNode.class).<JsonNode>readValues(rendered)) {
      while (documents.hasNext()) {
        JsonNode doc = documents.next();
        String type = doc.path("apiVersion").asString() + "/" + doc.path("kind").asString();
        objects.add(TYPED.containsKey(type) ? STRICT.treeToValue(doc, TYPED.get(type)) : STRICT.treeToValue(doc, GenericKubernetesResource.class));
      }
    }
    assertThat(objects).hasSize(kustomization.path("resources").size() + kustomization.path("configMapGenerator").size());
    objects.stream().filter(o -> !(o instanceof Namespace))
        .forEach(o -> assertThat(o.getMetadata().getNamespace()).as(o.getKind()).isEqualTo("idemgate"));
    Deployment deployment = objects.stream().filter(Deployment.class::isInstance).map(Deployment.class::cast).findFirst().orElseThrow();
    JsonNode image = kustomization.path("images").get(0);
    assertThat(deployment.getSpec().getTemplate().getSpec().getContainers().get(0).getImage())
        .isEqualTo(image.path("newName").asString() + ":" + image.path("newTag").asString());
    String configMapName = objects.stream().filter(ConfigMap.class::isInstance).map(o -> o.getMetadata().getName())
        .filter(name -> name.startsWith("idemgate-config-")).findFirst().orElseThrow();
    assertThat(deployment.getSpec().getTemplate().getSpec().getVolumes())
        .anySatisfy(v -> assertThat(v.getConfigMap()).isNotNull().extracting(c -> c.getName()).isEqualTo(configMapName));
  }

  // ---- Deployment

  private static Container gateway() {
    List<Container> containers = only(Deployment.class).getSpec().getTemplate().getSpec().getContainers();
    assertThat(containers).hasSize(1);
    return containers.get(0);
  }

  private static Map<String, String> env(Container container) {
    Map<String, String> values = new HashMap<>();
    for (EnvVar var : container.getEnv()) {
      values.put(var.getName(), var.getValue());
    }
    return values;
  }

  private static int containerPort(String name) {
    return gateway().getPorts().stream().filter(p -> name.equals(p.getName())).map(ContainerPort::getContainerPort)
        .findFirst().orElseThrow(() -> new AssertionError("no container port named " + name));
  }

  @Test
  @DisplayName("terminationGracePeriodSeconds exceeds the preStop pause plus the drain time plus the longest close after it")
  void graceCoversDrain() {
    PodSpec pod = only(Deployment.class).getSpec().getTemplate().getSpec();
    String drainSetting = env(gateway()).get("IDEMGATE_DRAIN_TIMEOUT");
    Duration drain = drainSetting == null ? DEFAULT_DRAIN : parseSeconds(drainSetting);
    long preStop = 0;
    if (gateway().getLifecycle() != null && gateway().getLifecycle().getPreStop() != null) {
      List<String> command = gateway().getLifecycle().getPreStop().getExec().getCommand();
      assertThat(command.get(0)).isEqualTo("sleep");
      preStop = Long.parseLong(command.get(1));
    }
    assertThat(pod.getTerminationGracePeriodSeconds()).isEqualTo(45L)
        .isGreaterThan(preStop + drain.toSeconds() + dev.idemgate.Idemgate.STOP_AFTER_DRAIN.toSeconds());
  }

  private static Duration parseSeconds(String value) {
    assertThat(value).matches("\\d+s");
    return Duration.ofSeconds(Long.parseLong(value.substring(0, value.length() - 1)));
  }

  @Test
  @DisplayName("readiness asks /health/ready and liveness /health/live, both on the management port 9090")
  void probes() {
    assertThat(containerPort("management")).isEqualTo(9090);
    assertThat(containerPort("http")).isEqualTo(8080);
    assertProbe(gateway().getReadinessProbe(), "/health/ready");
    assertProbe(gateway().getLivenessProbe(), "/health/live");
    if (gateway().getStartupProbe() != null) {
      assertProbe(gateway().getStartupProbe(), "/health/live");
    }
  }

  @Test
  @DisplayName("an init container migrates the schema, with the gateway's image, database, config and lock-down, and no probe to cut it short")
  void migratesBeforeTheProbedStart() {
    PodSpec pod = only(Deployment.class).getSpec().getTemplate().getSpec();
    // The startup probe gives the gateway's container failureThreshold x periodSeconds (2 minutes) to
    // answer /health/live. A migration may take far longer (V9 builds an index CONCURRENTLY over the
    // whole idempotency_keys table, Migrations allows it 30 minutes); run by "serve" under that probe
    // it was killed, its build cancelled and started over at every restart, and the rollout never ended.
    assertThat(pod.getInitContainers()).as("init containers").hasSize(1);
    Container migrate = pod.getInitContainers().get(0);
    assertThat(migrate.getArgs()).containsExactly("migrate");
    assertThat(migrate.getImage()).isEqualTo(gateway().getImage());
    assertThat(migrate.getStartupProbe()).isNull();
    assertThat(migrate.getLivenessProbe()).isNull();
    EnvVar pgUrl = migrate.getEnv().stream().filter(v -> v.getName().equals("IDEMGATE_PG_URL")).findFirst()
        .orElseThrow(() -> new AssertionError("the init container has no IDEMGATE_PG_URL"));
    EnvVar gatewayPgUrl = gateway().getEnv().stream().filter(v -> v.getName().equals("IDEMGATE_PG_URL")).findFirst().orElseThrow();
    assertThat(pgUrl.getValueFrom()).isEqualTo(gatewayPgUrl.getValueFrom());
    assertThat(env(migrate).get("IDEMGATE_CONFIG")).isEqualTo(env(gateway()).get("IDEMGATE_CONFIG"));
    assertThat(migrate.getVolumeMounts()).extracting(m -> m.getMountPath()).contains("/app/conf", "/tmp");
    assertThat(migrate.getSecurityContext()).isEqualTo(gateway().getSecurityContext());
    assertThat(migrate.getResources().getLimits()).isEqualTo(gateway().getResources().getLimits());
  }

  private static void assertProbe(Probe probe, String path) {
    assertThat(probe).as(path + " probe").isNotNull();
    assertThat(probe.getHttpGet().getPath()).isEqualTo(path);
    Object port = probe.getHttpGet().getPort().getValue();
    assertThat(port.equals("management") || port.equals(9090)).as("probe port %s is the management port", port).isTrue();
    assertThat(probe.getTimeoutSeconds()).isNotNull().isPositive();
  }

  @Test
  @DisplayName("the pod runs as non-root on a read-only root filesystem with /tmp on an emptyDir")
  void locksDown() {
    PodSpec pod = only(Deployment.class).getSpec().getTemplate().getSpec();
    assertThat(pod.getSecurityContext().getRunAsNonRoot()).isTrue();
    assertThat(pod.getSecurityContext().getRunAsUser()).isEqualTo(10001L);
    assertThat(gateway().getSecurityContext().getReadOnlyRootFilesystem()).isTrue();
    assertThat(gateway().getSecurityContext().getAllowPrivilegeEscalation()).isFalse();
    assertThat(gateway().getSecurityContext().getCapabilities().getDrop()).contains("ALL");
    String tmpVolume = gateway().getVolumeMounts().stream().filter(m -> m.getMountPath().equals("/tmp"))
        .findFirst().orElseThrow(() -> new AssertionError("/tmp is not mounted")).getName();
    assertThat(pod.getVolumes()).anySatisfy(v -> {
      assertThat(v.getName()).isEqualTo(tmpVolume);
      assertThat(v.getEmptyDir()).isNotNull();
    });
    assertThat(pod.getAutomountServiceAccountToken()).isFalse();
  }

  @Test
  @DisplayName("requests and limits are set for CPU and memory, and pods spread over nodes and zones")
  void resourcesAndSpread() {
    assertThat(gateway().getResources().getRequests()).containsKeys("cpu", "memory");
    assertThat(gateway().getResources().getLimits()).containsKeys("cpu", "memory");
    PodSpec pod = only(Deployment.class).getSpec().getTemplate().getSpec();
    assertThat(pod.getTopologySpreadConstraints()).extracting(c -> c.getTopologyKey())
        .contains("kubernetes.io/hostname", "topology.kubernetes.io/zone");
    Map<String, String> podLabels = only(Deployment.class).getSpec().getTemplate().getMetadata().getLabels();
    pod.getTopologySpreadConstraints().forEach(c -> assertSelects(c.getLabelSelector(), podLabels));
    assertThat(only(Deployment.class).getSpec().getReplicas()).as("the HPA owns the replica count").isNull();
  }

  @Test
  @DisplayName("every secret key the Deployment reads exists in the example Secret, which is marked as an example")
  void secretKeys() throws IOException {
    Secret example = (Secret) byFile.get("secret.example.yaml");
    assertThat(example).isNotNull();
    assertThat(Files.readString(K8S.resolve("secret.example.yaml"))).contains("EXAMPLE ONLY");
    assertThat(example.getStringData()).containsKeys("api-keys", "IDEMGATE_ADMIN_TOKEN");
    for (EnvVar var : gateway().getEnv()) {
      if (var.getValueFrom() != null && var.getValueFrom().getSecretKeyRef() != null) {
        assertThat(var.getValueFrom().getSecretKeyRef().getName()).isEqualTo(example.getMetadata().getName());
        assertThat(example.getStringData()).containsKey(var.getValueFrom().getSecretKeyRef().getKey());
      }
    }
    for (Volume volume : only(Deployment.class).getSpec().getTemplate().getSpec().getVolumes()) {
      if (volume.getSecret() != null) {
        assertThat(volume.getSecret().getSecretName()).isEqualTo(example.getMetadata().getName());
        volume.getSecret().getItems().forEach(item -> assertThat(example.getStringData()).containsKey(item.getKey()));
      }
    }
  }

  @Test
  @DisplayName("the pods charge through a real acquirer named in the Secret, never the ConfigMap's in-process simulator")
  void realAcquirer() {
    assertThat(env(gateway())).containsEntry("IDEMGATE_PROVIDER", "http");
    for (String name : new String[] {"IDEMGATE_PROVIDER_URL", "IDEMGATE_PROVIDER_NAME"}) {
      EnvVar var = gateway().getEnv().stream().filter(v -> v.getName().equals(name)).findFirst().orElseThrow();
      assertThat(var.getValueFrom().getSecretKeyRef().getKey()).isEqualTo(name);
    }
  }

  @Test
  @DisplayName("API keys come only from the mounted file of hashes, in a directory mount that sees the Secret's updates")
  void apiKeysFromTheMountedFile() {
    Map<String, String> env = env(gateway());
    assertThat(env).containsEntry("IDEMGATE_API_KEYS", "");
    Volume keys = only(Deployment.class).getSpec().getTemplate().getSpec().getVolumes().stream()
        .filter(v -> v.getSecret() != null).findFirst().orElseThrow();
    var mount = gateway().getVolumeMounts().stream().filter(m -> m.getName().equals(keys.getName()))
        .findFirst().orElseThrow();
    assertThat(mount.getSubPath()).as("a subPath mount never sees an updated Secret").isNull();
    assertThat(mount.getReadOnly()).isTrue();
    assertThat(keys.getSecret().getItems()).hasSize(1);
    assertThat(env.get("IDEMGATE_API_KEYS_FILE"))
        .isEqualTo(mount.getMountPath() + "/" + keys.getSecret().getItems().get(0).getPath());
  }

  // ---- Service, Ingress, HPA, PDB, NetworkPolicy

  private static void assertSelects(LabelSelector selector, Map<String, String> labels) {
    assertThat(selector).isNotNull();
    assertThat(labels).containsAllEntriesOf(selector.getMatchLabels());
  }

  private static ServicePort servicePort(String name) {
    return only(Service.class).getSpec().getPorts().stream().filter(p -> p.getName().equals(name)).findFirst()
        .orElseThrow(() -> new AssertionError("no service port " + name));
  }

  @Test
  @DisplayName("the Service selects the pods and offers http 8080 as h2c and management 9090")
  void service() {
    Map<String, String> podLabels = only(Deployment.class).getSpec().getTemplate().getMetadata().getLabels();
    assertThat(podLabels).containsAllEntriesOf(only(Service.class).getSpec().getSelector());
    assertThat(servicePort("http").getPort()).isEqualTo(8080);
    assertThat(servicePort("http").getAppProtocol()).isEqualTo("kubernetes.io/h2c");
    assertThat(servicePort("http").getTargetPort().getValue()).isIn("http", 8080);
    assertThat(servicePort("management").getPort()).isEqualTo(9090);
    assertThat(servicePort("management").getTargetPort().getValue()).isIn("management", 9090);
  }

  @Test
  @DisplayName("the Ingress routes only the public API to the http port, with a backend protocol nginx can proxy REST with")
  void ingress() {
    Ingress ingress = only(Ingress.class);
    assertThat(ingress.getMetadata().getAnnotations().get("nginx.ingress.kubernetes.io/backend-protocol"))
        .as("GRPC would send REST through grpc_pass").isEqualTo("HTTP");
    List<String> paths = new ArrayList<>();
    ingress.getSpec().getRules().forEach(rule -> rule.getHttp().getPaths().forEach(path -> {
      paths.add(path.getPath());
      IngressBackend backend = path.getBackend();
      assertThat(backend.getService().getName()).isEqualTo(only(Service.class).getMetadata().getName());
      assertThat(backend.getService().getPort().getName()).isEqualTo("http");
    }));
    assertThat(paths).containsExactlyInAnyOrder("/pay", "/v1/payments");
    assertThat(ingress.getSpec().getTls()).isNotEmpty();
  }

  @Test
  @DisplayName("the HPA (autoscaling/v2) scales the Deployment on CPU and on in-flight requests per pod")
  void hpa() {
    HorizontalPodAutoscaler hpa = only(HorizontalPodAutoscaler.class);
    assertThat(hpa.getApiVersion()).isEqualTo("autoscaling/v2");
    assertThat(hpa.getSpec().getScaleTargetRef().getKind()).isEqualTo("Deployment");
    assertThat(hpa.getSpec().getScaleTargetRef().getName()).isEqualTo(only(Deployment.class).getMetadata().getName());
    assertThat(hpa.getSpec().getMinReplicas()).isGreaterThanOrEqualTo(2);
    List<MetricSpec> metrics = hpa.getSpec().getMetrics();
    assertThat(metrics).anySatisfy(m -> {
      assertThat(m.getType()).isEqualTo("Resource");
      assertThat(m.getResource().getName()).isEqualTo("cpu");
    });
    assertThat(metrics).anySatisfy(m -> {
      assertThat(m.getType()).isEqualTo("Pods");
      assertThat(m.getPods().getMetric().getName()).isEqualTo("idemgate_inflight_requests");
      assertThat(m.getPods().getTarget().getType()).isEqualTo("AverageValue");
    });
  }

  @Test
  @DisplayName("the PodDisruptionBudget covers the gateway pods and leaves room for a drain")
  void pdb() {
    PodDisruptionBudget pdb = only(PodDisruptionBudget.class);
    assertSelects(pdb.getSpec().getSelector(), only(Deployment.class).getSpec().getTemplate().getMetadata().getLabels());
    assertThat(pdb.getSpec().getMaxUnavailable().getValue()).isEqualTo(1);
  }

  @Test
  @DisplayName("the NetworkPolicy lets only the ingress controller reach 8080 and only monitoring reach 9090")
  void networkPolicy() {
    NetworkPolicy policy = only(NetworkPolicy.class);
    assertSelects(policy.getSpec().getPodSelector(), only(Deployment.class).getSpec().getTemplate().getMetadata().getLabels());
    assertThat(policy.getSpec().getPolicyTypes()).contains("Ingress");
    Map<Integer, List<String>> sourcesByPort = new HashMap<>();
    for (NetworkPolicyIngressRule rule : policy.getSpec().getIngress()) {
      assertThat(rule.getFrom()).as("a rule without from admits everyone").isNotEmpty();
      assertThat(rule.getPorts()).as("a rule without ports opens every port").isNotEmpty();
      rule.getPorts().forEach(port -> rule.getFrom().forEach(peer -> {
        assertThat(peer.getNamespaceSelector()).as("peers are chosen by namespace").isNotNull();
        sourcesByPort.computeIfAbsent(port.getPort().getIntVal(), p -> new ArrayList<>())
            .add(peer.getNamespaceSelector().getMatchLabels().get("kubernetes.io/metadata.name"));
      }));
    }
    assertThat(sourcesByPort).containsOnlyKeys(8080, 9090);
    assertThat(sourcesByPort.get(8080)).containsOnly("ingress-nginx");
    assertThat(sourcesByPort.get(9090)).containsOnly("monitoring");
  }

  // ---- Prometheus Operator kinds

  private static final Set<String> SERVICE_MONITOR_SPEC = Set.of("jobLabel", "targetLabels", "podTargetLabels",
      "endpoints", "selector", "selectorMechanism", "namespaceSelector", "sampleLimit", "scrapeProtocols",
      "fallbackScrapeProtocol", "targetLimit", "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit",
      "scrapeClassicHistograms", "nativeHistogramBucketLimit", "nativeHistogramMinBucketFactor",
      "convertClassicHistogramsToNHCB", "keepDroppedTargets", "attachMetadata", "scrapeClass", "bodySizeLimit",
      "serviceDiscoveryRole");
  private static final Set<String> SERVICE_MONITOR_ENDPOINT = Set.of("port", "targetPort", "path", "scheme", "params",
      "interval", "scrapeTimeout", "tlsConfig", "bearerTokenFile", "bearerTokenSecret", "authorization",
      "honorLabels", "honorTimestamps", "trackTimestampsStaleness", "basicAuth", "oauth2", "metricRelabelings",
      "relabelings", "proxyUrl", "noProxy", "proxyFromEnvironment", "proxyConnectHeader", "followRedirects",
      "enableHttp2", "filterRunning");
  private static final Set<String> RULE_GROUP = Set.of("name", "labels", "interval", "query_offset", "limit",
      "partial_response_strategy", "rules");
  private static final Set<String> RULE = Set.of("record", "alert", "expr", "for", "keep_firing_for", "labels",
      "annotations");

  @Test
  @DisplayName("the ServiceMonitor uses only ServiceMonitor fields and scrapes /metrics on the management port of our Service")
  void serviceMonitor() {
    GenericKubernetesResource monitor = custom("ServiceMonitor");
    JsonNode spec = STRICT.valueToTree(monitor.getAdditionalProperties().get("spec"));
    assertThat(fieldNames(spec)).isSubsetOf(SERVICE_MONITOR_SPEC);
    assertThat(monitor.getAdditionalProperties()).containsOnlyKeys("spec");
    LabelSelector selector = STRICT.treeToValue(spec.get("selector"), LabelSelector.class);
    assertSelects(selector, only(Service.class).getMetadata().getLabels());
    assertThat(spec.get("endpoints").size()).isEqualTo(1);
    JsonNode endpoint = spec.get("endpoints").get(0);
    assertThat(fieldNames(endpoint)).isSubsetOf(SERVICE_MONITOR_ENDPOINT);
    assertThat(endpoint.get("port").asString()).isEqualTo("management");
    assertThat(servicePort(endpoint.get("port").asString()).getPort()).isEqualTo(9090);
    assertThat(endpoint.get("path").asString()).isEqualTo("/metrics");
  }

  @Test
  @DisplayName("the PrometheusRule uses only rule fields, and its alerts name only the gateway's meters, and only bucket "
      + "boundaries as thresholds on the latency histograms (IdemgateGateLatencyHigh's among them)")
  void alertRules() {
    GenericKubernetesResource rules = custom("PrometheusRule");
    assertThat(rules.getAdditionalProperties()).containsOnlyKeys("spec");
    JsonNode spec = STRICT.valueToTree(rules.getAdditionalProperties().get("spec"));
    assertThat(fieldNames(spec)).containsOnly("groups");
    int alerts = 0;
    List<String> latencyAlerts = new ArrayList<>();
    for (JsonNode group : spec.get("groups")) {
      assertThat(fieldNames(group)).isSubsetOf(RULE_GROUP);
      for (JsonNode rule : group.get("rules")) {
        assertThat(fieldNames(rule)).isSubsetOf(RULE);
        String expr = rule.get("expr").asString();
        assertThat(PromQlMeters.unknownSeries(expr, Set.of("up"))).as(rule.get("alert").asString()).isEmpty();
        assertThat(PromQlMeters.unknownOutcomes(expr)).as(rule.get("alert").asString()).isEmpty();
        assertThat(PromQlMeters.offBoundaryLatencyThresholds(expr))
            .as("%s: latency thresholds that are no bucket boundary of their histogram %s",
                rule.get("alert").asString(), PromQlMeters.LATENCY_BOUNDARIES).isEmpty();
        if (PromQlMeters.LATENCY_BOUNDARIES.keySet().stream().anyMatch(expr::contains)) {
          latencyAlerts.add(rule.get("alert").asString());
        }
        assertThat(rule.path("labels").path("severity").asString()).isIn("critical", "warning");
        assertThat(rule.path("annotations").path("summary").asString()).isNotBlank();
        alerts++;
      }
    }
    assertThat(alerts).isGreaterThanOrEqualTo(5);
    assertThat(latencyAlerts).as("alerts whose latency thresholds were checked").contains("IdemgateGateLatencyHigh");
  }

  @Test
  @DisplayName("the alerts on a share of failed payments leave requests refused before the store (429, 4xx) out of "
      + "the whole: a flood of 401s or 400s must not hide an outage")
  void failureSharesLeaveRefusedRequestsOut() {
    JsonNode spec = STRICT.valueToTree(custom("PrometheusRule").getAdditionalProperties().get("spec"));
    Map<String, String> denominators = new TreeMap<>();
    for (JsonNode group : spec.get("groups")) {
      for (JsonNode rule : group.get("rules")) {
        String expr = rule.get("expr").asString();
        int divide = expr.indexOf(" / ");
        if (expr.contains("idemgate_requests_total") && divide > 0) {
          denominators.put(rule.get("alert").asString(), expr.substring(divide + 3).strip());
        }
      }
    }
    assertThat(denominators).containsKeys("IdemgateStoreUnavailable", "IdemgateProviderUnavailable");
    assertThat(denominators).allSatisfy((alert, denominator) ->
        assertThat(denominator).as(alert).contains("idemgate_requests_total{outcome!~\"rate_limited|rejected\"}"));
  }

  private static List<String> fieldNames(JsonNode node) {
    List<String> names = new ArrayList<>();
    node.propertyNames().forEach(names::add);
    return names;
  }
}
