package dev.idemgate.ship;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.joran.JoranConfigurator;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.slf4j.Logger;
import org.slf4j.MDC;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The shipped {@code logback.xml} (not a test copy) writes one JSON object per line on stdout,
 * carrying the fields a log pipeline indexes. Each test loads it into a private LoggerContext so the
 * global logging of the test JVM is left alone.
 */
class JsonLogFormatTest {
  private static final JsonMapper JSON = JsonMapper.builder().build();

  @AfterEach
  void clearLevelProperty() {
    System.clearProperty("IDEMGATE_LOG_LEVEL");
    MDC.clear();
  }

  @Test
  @DisplayName("a logged event with a key-value pair and MDC comes out as one JSON line with level, logger, message, MDC and the pair")
  void eventIsOneJsonLine() throws Exception {
    List<String> lines = captureStdout(context -> {
      Logger log = context.getLogger("dev.idemgate.http.ApiVerticle");
      MDC.put("request_id", "req-42");
      log.atInfo().addKeyValue("outcome", "replayed").addKeyValue("status", 201).log("payment answered in {} ms", 7);
    });

    assertThat(lines).hasSize(1);
    JsonNode event = JSON.readTree(lines.get(0));
    assertThat(event.get("level").asString()).isEqualTo("INFO");
    assertThat(event.get("loggerName").asString()).isEqualTo("dev.idemgate.http.ApiVerticle");
    assertThat(event.get("formattedMessage").asString()).isEqualTo("payment answered in 7 ms");
    assertThat(event.get("timestamp").asLong()).isPositive();
    assertThat(event.get("mdc").get("request_id").asString()).isEqualTo("req-42");
    assertThat(event.get("kvpList").toString()).contains("\"outcome\":\"replayed\"").contains("\"status\":\"201\"");
    assertThat(event.has("arguments")).as("raw arguments are not repeated").isFalse();
    assertThat(event.has("sequenceNumber")).as("always 0 without a generator, so left out").isFalse();
  }

  @Test
  @DisplayName("quotes, newlines and a stack trace stay inside one JSON line")
  void awkwardTextStaysOneLine() throws Exception {
    List<String> lines = captureStdout(context -> context.getLogger("dev.idemgate.Main")
        .atError().addKeyValue("detail", "say \"hi\"\nthen leave").setCause(new IllegalStateException("boom"))
        .log("line one\nline two"));

    assertThat(lines).hasSize(1);
    JsonNode event = JSON.readTree(lines.get(0));
    assertThat(event.get("formattedMessage").asString()).isEqualTo("line one\nline two");
    assertThat(event.get("kvpList").toString()).contains("say \\\"hi\\\"\\nthen leave");
    assertThat(event.get("throwable").get("className").asString()).isEqualTo("java.lang.IllegalStateException");
  }

  @Test
  @DisplayName("the level comes from IDEMGATE_LOG_LEVEL and Netty and Flyway stay at WARN")
  void levelFromSetting() throws Exception {
    // Logback resolves ${IDEMGATE_LOG_LEVEL} from system properties before the environment, so a property stands in for the variable.
    System.setProperty("IDEMGATE_LOG_LEVEL", "WARN");
    List<String> lines = captureStdout(context -> {
      context.getLogger("dev.idemgate.x").info("hidden at WARN");
      context.getLogger("dev.idemgate.x").warn("shown at WARN");
    });
    assertThat(lines).hasSize(1);
    assertThat(lines.get(0)).contains("shown at WARN");

    System.setProperty("IDEMGATE_LOG_LEVEL", "DEBUG");
    lines = captureStdout(context -> {
      context.getLogger("dev.idemgate.x").debug("app debug");
      context.getLogger("io.netty.channel.X").info("netty chatter");
      context.getLogger("org.flywaydb.core.X").info("flyway chatter");
    });
    assertThat(lines).hasSize(1);
    assertThat(lines.get(0)).contains("app debug");
  }

  @Test
  @DisplayName("without IDEMGATE_LOG_LEVEL the level is INFO")
  void defaultLevelIsInfo() throws Exception {
    List<String> lines = captureStdout(context -> {
      context.getLogger("dev.idemgate.x").debug("hidden at INFO");
      context.getLogger("dev.idemgate.x").info("shown at INFO");
    });
    assertThat(lines).hasSize(1);
    assertThat(lines.get(0)).contains("shown at INFO");
  }

  @Test
  @DisplayName("Vert.x's ERROR for a TLS client's bad HTTP/2 preface, which holds the client's bytes in hex, is dropped; its other errors stay")
  void badPrefaceLineDropped() throws Exception {
    List<String> lines = captureStdout(context -> {
      Logger connection = context.getLogger("io.vertx.core.net.impl.ConnectionBase");
      connection.error("HTTP/2 client preface string missing or corrupt. Hex dump for received bytes: 417574",
          new IllegalStateException("HTTP/2 client preface string missing or corrupt. Hex dump for received bytes: 417574"));
      connection.error("some other connection failure", new IllegalStateException("boom"));
    });
    assertThat(lines).hasSize(1);
    assertThat(lines.get(0)).contains("some other connection failure").doesNotContain("Hex dump");
  }

  private static List<String> captureStdout(Consumer<LoggerContext> logging) throws Exception {
    URL config = JsonLogFormatTest.class.getResource("/logback.xml");
    assertThat(config).as("logback.xml on the classpath").isNotNull();
    PrintStream original = System.out;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    LoggerContext context = new LoggerContext();
    // A private context has no MDC adapter of its own; share SLF4J's, which MDC.put writes to.
    context.setMDCAdapter(MDC.getMDCAdapter());
    try {
      // ConsoleAppender writes through whatever System.out is at write time, so swapping it captures the output.
      System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
      JoranConfigurator configurator = new JoranConfigurator();
      configurator.setContext(context);
      configurator.doConfigure(config);
      logging.accept(context);
    } finally {
      context.stop();
      System.setOut(original);
    }
    return captured.toString(StandardCharsets.UTF_8).lines().filter(line -> !line.isBlank()).toList();
  }
}
