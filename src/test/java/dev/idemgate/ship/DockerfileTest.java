package dev.idemgate.ship;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.MatchResult;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * No Docker engine runs where the tests run, so the Dockerfile is read as text: a small parser
 * (continuation lines, comments, stages) and the checks an image review would make. Each rule is
 * also run against a broken Dockerfile, so that a check that cannot fail is caught.
 */
class DockerfileTest {
  private static final Path DOCKERFILE = Path.of("Dockerfile");
  private static Dockerfile image;

  @BeforeAll
  static void parse() throws IOException {
    image = Dockerfile.parse(Files.readString(DOCKERFILE));
  }

  @Test
  @DisplayName("the image is built in two stages: a Maven + JDK 17 build and a JRE 17 runtime")
  void multiStage() {
    assertThat(image.stages).hasSizeGreaterThanOrEqualTo(2);
    assertThat(image.stages.get(0).baseImage).startsWith("maven:").contains("17");
    assertThat(image.finalStage().baseImage).contains("17").containsIgnoringCase("jre");
    assertThat(Checks.multiStage(Dockerfile.parse("FROM eclipse-temurin:17.0.16_8-jre-noble\nUSER 10001\n"))).isNotEmpty();
  }

  @Test
  @DisplayName("no base image is untagged or tagged latest")
  void pinnedTags() {
    assertThat(Checks.pinnedTags(image)).isEmpty();
    assertThat(Checks.pinnedTags(Dockerfile.parse("FROM maven:latest AS build\nFROM eclipse-temurin\n"))).hasSize(2);
    assertThat(Checks.pinnedTags(Dockerfile.parse("FROM maven:3.9.11-eclipse-temurin-17 AS build\nFROM build\n"))).isEmpty();
  }

  @Test
  @DisplayName("the final stage runs as a non-root user")
  void nonRootUser() {
    assertThat(Checks.nonRootUser(image)).isEmpty();
    assertThat(Checks.nonRootUser(Dockerfile.parse("FROM a:1 AS b\nUSER 10001\nFROM c:1\n"))).isNotEmpty();
    assertThat(Checks.nonRootUser(Dockerfile.parse("FROM a:1 AS b\nFROM c:1\nUSER 10001\nUSER root\n"))).isNotEmpty();
    assertThat(Checks.nonRootUser(Dockerfile.parse("FROM a:1 AS b\nFROM c:1\nUSER 0:0\n"))).isNotEmpty();
  }

  @Test
  @DisplayName("HEALTHCHECK asks /health/live on the management port the gateway listens on (9090 unless set)")
  void healthcheck() {
    assertThat(Checks.healthcheck(image)).isEmpty();
    // A fixed port: a container run with another IDEMGATE_MANAGEMENT_PORT would be reported unhealthy.
    assertThat(Checks.healthcheck(Dockerfile.parse("FROM a:1\nHEALTHCHECK CMD [\"bash\", \"-c\", "
        + "\"exec 3<>/dev/tcp/127.0.0.1/9090 && printf 'GET /health/live HTTP/1.1' >&3\"]\n"))).isNotEmpty();
    assertThat(Checks.healthcheck(Dockerfile.parse("FROM a:1\nHEALTHCHECK CMD curl -f http://localhost:8080/pay\n"))).isNotEmpty();
    assertThat(Checks.healthcheck(Dockerfile.parse("FROM a:1\n"))).isNotEmpty();
  }

  @Test
  @DisplayName("the jar Maven builds in stage 1 is the one copied into the final stage and started by the entrypoint")
  void jarFromBuildStage() throws IOException {
    assertThat(Files.readString(Path.of("pom.xml"))).as("the jar is named by pom.xml's finalName")
        .contains("<finalName>idemgate</finalName>");
    assertThat(Checks.jarFromBuildStage(image)).isEmpty();
    assertThat(Checks.jarFromBuildStage(Dockerfile.parse(
        "FROM maven:3 AS build\nRUN mvn package\nFROM jre:17\nCOPY idemgate.jar /app/idemgate.jar\n"
            + "ENTRYPOINT [\"java\", \"-jar\", \"/app/idemgate.jar\"]\n"))).isNotEmpty();
  }

  @Test
  @DisplayName("java is PID 1 with container-aware memory flags, bounded direct memory, and exits on OutOfMemoryError")
  void containerJvmFlags() {
    assertThat(Checks.containerJvm(image)).isEmpty();
    assertThat(Checks.containerJvm(Dockerfile.parse("FROM a:1\nENTRYPOINT java -Xmx1g -jar /app/idemgate.jar\n")))
        .as("shell form and a fixed heap").hasSizeGreaterThanOrEqualTo(2);
    assertThat(Checks.containerJvm(Dockerfile.parse("FROM a:1\nENTRYPOINT [\"java\", \"-XX:MaxRAMPercentage=60.0\", "
        + "\"-XX:+ExitOnOutOfMemoryError\", \"-jar\", \"/app/idemgate.jar\"]\n")))
        .as("direct memory unbounded").containsExactly(
            "no -XX:MaxDirectMemorySize: direct buffers may grow as large as the heap, past the container's limit");
  }

  @Test
  @DisplayName("the API and management ports are exposed and conf/ ships in the image")
  void portsAndConf() {
    List<String> exposed = image.finalStage().arguments("EXPOSE").stream()
        .flatMap(arguments -> List.of(arguments.split("\\s+")).stream()).toList();
    assertThat(exposed).contains("8080", "9090");
    assertThat(image.finalStage().arguments("COPY")).anySatisfy(copy -> assertThat(copy).startsWith("conf/ ").endsWith("/app/conf/"));
  }

  @Test
  @DisplayName("the image's environment names the config file and no setting: an ENV setting would win over the ConfigMap unseen")
  void noSettingInTheImageEnvironment() {
    List<String> settings = image.finalStage().arguments("ENV").stream()
        .flatMap(env -> Pattern.compile("IDEMGATE_[A-Z0-9_]+").matcher(env).results().map(MatchResult::group))
        .filter(name -> !name.equals("IDEMGATE_CONFIG")).toList();
    assertThat(settings).as("settings the image's ENV sets").isEmpty();
  }

  @Test
  @DisplayName("the build context (.dockerignore) keeps everything the build stage copies")
  void buildContextKeepsSources() throws IOException {
    Path ignore = Path.of(".dockerignore");
    List<String> patterns = Files.exists(ignore)
        ? Files.readAllLines(ignore).stream().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("#")).toList()
        : List.of();
    for (String copied : image.stages.get(0).arguments("COPY")) {
      String source = copied.split("\\s+")[0];
      String top = source.replaceAll("/+$", "").split("/")[0];
      assertThat(patterns).as(".dockerignore must not drop " + source).doesNotContain(top, top + "/", "*", "**", "/" + top);
    }
  }

  /** The rules, each returning what is wrong (empty when fine). */
  static final class Checks {
    static List<String> multiStage(Dockerfile file) {
      return file.stages.size() >= 2 ? List.of() : List.of("one stage only: build tools would ship in the runtime image");
    }

    static List<String> pinnedTags(Dockerfile file) {
      List<String> problems = new ArrayList<>();
      List<String> stageNames = new ArrayList<>();
      for (Stage stage : file.stages) {
        String base = stage.baseImage;
        boolean earlierStage = stageNames.contains(base.toLowerCase(Locale.ROOT));
        String withoutDigest = base.contains("@") ? base.substring(0, base.indexOf('@')) : base;
        String lastPart = withoutDigest.substring(withoutDigest.lastIndexOf('/') + 1);
        boolean tagged = lastPart.contains(":") || base.contains("@sha256:");
        if (!earlierStage && (!tagged || lastPart.endsWith(":latest"))) {
          problems.add("base image not pinned: " + base);
        }
        stage.name.ifPresent(name -> stageNames.add(name.toLowerCase(Locale.ROOT)));
      }
      return problems;
    }

    static List<String> nonRootUser(Dockerfile file) {
      List<String> users = file.finalStage().arguments("USER");
      if (users.isEmpty()) {
        return List.of("the final stage has no USER: the process would run as root");
      }
      String user = users.get(users.size() - 1).split(":")[0].trim();
      return user.equals("root") || user.equals("0") ? List.of("the final USER is root") : List.of();
    }

    static List<String> healthcheck(Dockerfile file) {
      List<String> checks = file.finalStage().arguments("HEALTHCHECK");
      if (checks.isEmpty()) {
        return List.of("no HEALTHCHECK");
      }
      String check = checks.get(checks.size() - 1);
      List<String> problems = new ArrayList<>();
      if (!check.contains("/health/live")) {
        problems.add("HEALTHCHECK does not ask /health/live");
      }
      if (!check.contains("${IDEMGATE_MANAGEMENT_PORT:-9090}")) {
        problems.add("HEALTHCHECK does not ask the management port the gateway listens on (IDEMGATE_MANAGEMENT_PORT, 9090)");
      }
      return problems;
    }

    static List<String> jarFromBuildStage(Dockerfile file) {
      Stage build = file.stages.get(0);
      String buildRef = build.name.orElse("0");
      boolean packaged = build.arguments("RUN").stream().anyMatch(run -> run.contains("mvn") && run.contains("package"));
      String workdir = build.arguments("WORKDIR").stream().reduce((first, second) -> second).orElse("/");
      String builtJar = (workdir.endsWith("/") ? workdir : workdir + "/") + "target/idemgate.jar";
      Optional<String[]> copied = file.finalStage().arguments("COPY").stream()
          .filter(copy -> copy.startsWith("--from=" + buildRef + " "))
          .map(copy -> copy.substring(("--from=" + buildRef + " ").length()).trim().split("\\s+"))
          .filter(paths -> paths.length == 2 && paths[0].equals(builtJar))
          .findFirst();
      List<String> problems = new ArrayList<>();
      if (!packaged) {
        problems.add("the build stage does not run mvn package");
      }
      if (copied.isEmpty()) {
        problems.add("the final stage does not COPY --from=" + buildRef + " " + builtJar);
        return problems;
      }
      String entrypoint = String.join(" ", file.finalStage().execForm("ENTRYPOINT"));
      if (!entrypoint.contains("-jar " + copied.get()[1])) {
        problems.add("the entrypoint does not run the copied jar " + copied.get()[1]);
      }
      return problems;
    }

    static List<String> containerJvm(Dockerfile file) {
      List<String> problems = new ArrayList<>();
      List<String> entrypoint = file.finalStage().execForm("ENTRYPOINT");
      if (entrypoint.isEmpty()) {
        problems.add("ENTRYPOINT is not in exec form: a shell would be PID 1 and swallow SIGTERM, so no graceful drain");
      }
      String all = String.join(" ", entrypoint);
      if (!all.contains("-XX:MaxRAMPercentage=")) {
        problems.add("no -XX:MaxRAMPercentage: the heap would not follow the container's memory limit");
      }
      if (!all.contains("-XX:+ExitOnOutOfMemoryError")) {
        problems.add("no -XX:+ExitOnOutOfMemoryError");
      }
      if (!all.contains("-XX:MaxDirectMemorySize=")) {
        problems.add("no -XX:MaxDirectMemorySize: direct buffers may grow as large as the heap, past the container's limit");
      }
      if (all.contains("-Xmx")) {
        problems.add("a fixed -Xmx ignores the container's memory limit");
      }
      if (!entrypoint.isEmpty() && !entrypoint.get(0).equals("java")) {
        problems.add("java is not PID 1");
      }
      return problems;
    }
  }

  /** A Dockerfile as stages of instructions. */
  static final class Dockerfile {
    final List<Stage> stages = new ArrayList<>();

    Stage finalStage() {
      return stages.get(stages.size() - 1);
    }

    static Dockerfile parse(String text) {
      Dockerfile file = new Dockerfile();
      StringBuilder logical = new StringBuilder();
      for (String line : text.split("\n", -1)) {
        String trimmed = line.strip();
        // Comment lines (parser directives included) end nothing: Docker drops them even inside a continued instruction.
        if (trimmed.startsWith("#")) {
          continue;
        }
        if (trimmed.endsWith("\\")) {
          logical.append(trimmed, 0, trimmed.length() - 1).append(' ');
          continue;
        }
        logical.append(trimmed);
        file.add(logical.toString().strip());
        logical.setLength(0);
      }
      file.add(logical.toString().strip());
      return file;
    }

    private void add(String instruction) {
      if (instruction.isEmpty()) {
        return;
      }
      String[] parts = instruction.split("\\s+", 2);
      String keyword = parts[0].toUpperCase(Locale.ROOT);
      String arguments = parts.length > 1 ? parts[1].strip() : "";
      if (keyword.equals("FROM")) {
        String[] words = arguments.split("\\s+");
        List<String> plain = new ArrayList<>();
        for (String word : words) {
          if (!word.startsWith("--")) {
            plain.add(word);
          }
        }
        Optional<String> name = plain.size() >= 3 && plain.get(1).equalsIgnoreCase("AS") ? Optional.of(plain.get(2)) : Optional.empty();
        stages.add(new Stage(plain.get(0), name));
      } else if (!stages.isEmpty()) {
        finalStage().instructions.add(new String[] {keyword, arguments});
      }
    }
  }

  /** One FROM and what follows it. */
  static final class Stage {
    final String baseImage;
    final Optional<String> name;
    final List<String[]> instructions = new ArrayList<>();

    Stage(String baseImage, Optional<String> name) {
      this.baseImage = baseImage;
      this.name = name;
    }

    List<String> arguments(String keyword) {
      return instructions.stream().filter(i -> i[0].equals(keyword)).map(i -> i[1]).toList();
    }

    /** The last such instruction's exec-form words (a JSON array), or empty when absent or in shell form. */
    List<String> execForm(String keyword) {
      List<String> all = arguments(keyword);
      if (all.isEmpty()) {
        return List.of();
      }
      String last = all.get(all.size() - 1).strip();
      if (!last.startsWith("[") || !last.endsWith("]")) {
        return List.of();
      }
      List<String> words = new ArrayList<>();
      for (String quoted : last.substring(1, last.length() - 1).split(",")) {
        String word = quoted.strip();
        words.add(word.startsWith("\"") && word.endsWith("\"") ? word.substring(1, word.length() - 1) : word);
      }
      return words;
    }
  }
}
