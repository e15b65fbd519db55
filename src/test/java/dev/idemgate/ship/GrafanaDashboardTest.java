package dev.idemgate.ship;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code k8s/grafana-dashboard.json} is valid JSON and its queries name only the meters the gateway
 * exports ({@link PromQlMeters}): when a meter is renamed, this test says which panels break.
 */
class GrafanaDashboardTest {
  private static final Pattern LABEL_VALUES = Pattern.compile("label_values\\((.*),\\s*\\w+\\)");
  private static JsonNode dashboard;

  @BeforeAll
  static void parse() throws IOException {
    dashboard = JsonMapper.builder().build().readTree(Path.of("k8s", "grafana-dashboard.json").toFile());
  }

  private static List<JsonNode> panels() {
    List<JsonNode> panels = new ArrayList<>();
    for (JsonNode panel : dashboard.get("panels")) {
      panels.add(panel);
      panel.path("panels").forEach(panels::add);
    }
    return panels;
  }

  private static List<String> exprs() {
    List<String> exprs = new ArrayList<>();
    for (JsonNode panel : panels()) {
      panel.path("targets").forEach(target -> exprs.add(target.get("expr").asString()));
    }
    return exprs;
  }

  @Test
  @DisplayName("the dashboard parses as JSON with a stable uid, a title and panels that all have queries")
  void parses() {
    assertThat(dashboard.get("uid").asString()).isEqualTo("idemgate-overview");
    assertThat(dashboard.get("title").asString()).isNotBlank();
    for (JsonNode panel : panels()) {
      if (!panel.get("type").asString().equals("row")) {
        assertThat(panel.path("targets").size()).as(panel.get("title").asString()).isPositive();
      }
    }
    Set<Integer> ids = new HashSet<>();
    panels().forEach(panel -> assertThat(ids.add(panel.get("id").asInt())).as("panel ids are unique").isTrue());
  }

  @Test
  @DisplayName("every panel query names only meters from the gateway's list, and only bucket boundaries as thresholds on the "
      + "request, gate, store and provider latency histograms")
  void panelsNameKnownMetersOnly() {
    for (JsonNode panel : panels()) {
      for (JsonNode target : panel.path("targets")) {
        String expr = target.get("expr").asString();
        assertThat(PromQlMeters.seriesIn(expr)).as(panel.get("title").asString() + ": " + expr).isNotEmpty();
        assertThat(PromQlMeters.unknownSeries(expr, Set.of())).as(panel.get("title").asString() + ": " + expr).isEmpty();
        assertThat(PromQlMeters.unknownOutcomes(expr)).as(panel.get("title").asString()).isEmpty();
        assertThat(PromQlMeters.offBoundaryLatencyThresholds(expr))
            .as("%s: latency thresholds that are no bucket boundary %s", panel.get("title").asString(),
                PromQlMeters.LATENCY_BOUNDARIES).isEmpty();
      }
    }
  }

  @Test
  @DisplayName("template variables query only known meters too")
  void variablesNameKnownMetersOnly() {
    for (JsonNode variable : dashboard.get("templating").get("list")) {
      if (variable.get("type").asString().equals("query")) {
        String query = variable.get("query").isObject() ? variable.get("query").get("query").asString() : variable.get("query").asString();
        Matcher m = LABEL_VALUES.matcher(query);
        assertThat(m.matches()).as(query).isTrue();
        assertThat(PromQlMeters.unknownSeries(m.group(1), Set.of())).as(query).isEmpty();
      }
    }
  }

  @Test
  @DisplayName("every gateway meter appears on the dashboard")
  void everyGatewayMeterIsShown() {
    Set<String> shown = new HashSet<>();
    exprs().forEach(expr -> shown.addAll(PromQlMeters.seriesIn(expr)));
    for (String meter : PromQlMeters.EXACT) {
      assertThat(shown).as("shows " + meter).contains(meter);
    }
    for (String histogram : PromQlMeters.HISTOGRAMS) {
      assertThat(shown).as("shows " + histogram).anyMatch(series -> series.startsWith(histogram + "_"));
    }
    assertThat(shown).anyMatch(series -> series.startsWith(PromQlMeters.VERTX_POOL_PREFIX));
  }

  @Test
  @DisplayName("the meter check itself catches a misspelt meter, an unknown suffix and an unknown outcome")
  void checkCanFail() {
    assertThat(PromQlMeters.unknownSeries("sum(rate(idemgate_request_total[5m]))", Set.of())).containsExactly("idemgate_request_total");
    assertThat(PromQlMeters.unknownSeries("rate(idemgate_gate_latency_seconds_total[1m])", Set.of())).hasSize(1);
    assertThat(PromQlMeters.unknownSeries(
        "histogram_quantile(0.99, sum by (le, outcome) (rate(idemgate_provider_latency_seconds_bucket{pod=~\"$pod\"}[$__rate_interval]))) / 1e-9",
        Set.of())).isEmpty();
    assertThat(PromQlMeters.unknownOutcomes("idemgate_requests_total{outcome=~\"created|charged\"}")).containsExactly("charged");
    assertThat(PromQlMeters.seriesIn("up{job=\"idemgate\"} == 1 and on (pod) vertx_pool_in_use > 0"))
        .containsExactly("up", "vertx_pool_in_use");
  }

  @Test
  @DisplayName("the bucket check catches a latency threshold between two boundaries of its histogram, as a quantile's bound "
      + "or as le, and lets boundaries, +Inf and ratios through")
  void latencyThresholdCheckCanFail() {
    String p99 = "histogram_quantile(0.99, sum by (le) (rate(idemgate_request_latency_seconds_bucket{outcome=\"created\"}[5m])))";
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(p99 + " > 0.3")).containsExactly("0.3");
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(p99 + " > 0.25")).isEmpty();
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(p99 + " >= 2.5")).isEmpty();
    String fastShare = "sum(rate(idemgate_request_latency_seconds_bucket{le=\"%s\"}[5m])) "
        + "/ sum(rate(idemgate_request_latency_seconds_count[5m])) < 0.99";
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(fastShare.formatted("0.3"))).containsExactly("0.3");
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(fastShare.formatted("0.001"))).isEmpty();
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(fastShare.formatted("+Inf"))).isEmpty();
    String gateP99 = "histogram_quantile(0.99, sum by (le) (rate(idemgate_gate_latency_seconds_bucket[5m])))";
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(gateP99 + " > 0.3")).containsExactly("0.3");
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(gateP99 + " > 0.25")).isEmpty();
    // Each histogram by its own buckets: 10 s is a provider boundary, past the gate's last (0.5 s).
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(gateP99 + " > 10")).containsExactly("10");
    String providerP99 = "histogram_quantile(0.99, sum by (le) (rate(idemgate_provider_latency_seconds_bucket[5m])))";
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(providerP99 + " > 10")).isEmpty();
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(providerP99 + " > 0.001")).containsExactly("0.001");
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(
        "sum(rate(idemgate_store_latency_seconds_bucket{operation=\"claim\", le=\"0.0005\"}[5m]))")).containsExactly("0.0005");
    assertThat(PromQlMeters.offBoundaryLatencyThresholds(
        "sum(rate(idemgate_store_latency_seconds_bucket{operation=\"claim\", le=\"5.0\"}[5m]))")).isEmpty();
  }
}
