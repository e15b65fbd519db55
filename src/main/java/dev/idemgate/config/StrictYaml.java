package dev.idemgate.config;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.DuplicateKeyException;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.Tag;
import org.yaml.snakeyaml.representer.Representer;
import org.yaml.snakeyaml.resolver.Resolver;

/**
 * Reads a settings file ({@code idemgate.yaml}, {@code reconciliation.yaml}): a YAML mapping of
 * setting to value, in which a key given twice, at any depth, is refused with one
 * {@link ConfigException} line naming the file, the key and the line. SnakeYAML would otherwise keep
 * the last one, with only a warning that names neither the file nor the line.
 */
public final class StrictYaml {
  private StrictYaml() {}

  /** The top-level mapping of {@code in} (closed here), empty for an empty file; {@code source} names it in messages. */
  public static Map<String, Object> read(InputStream in, String source) {
    return read(in, source, new Resolver());
  }

  /**
   * As {@link #read}, every value the text it is written as (a string), or null when left empty:
   * for settings that are parsed as the environment's are, from text. YAML 1.1's implicit types
   * came first otherwise, and changed what was written: {@code off} (a value of
   * {@code duplicate_payload_policy} and {@code tracing}) became {@code false}, {@code 1:30} the
   * number 90 (base 60), {@code 0123456701234567} an octal number.
   */
  public static Map<String, Object> readText(InputStream in, String source) {
    return read(in, source, new TextOnly());
  }

  private static Map<String, Object> read(InputStream in, String source, Resolver resolver) {
    try (Reader reader = new InputStreamReader(in, StandardCharsets.UTF_8)) {
      LoaderOptions options = new LoaderOptions();
      options.setAllowDuplicateKeys(false);
      Object parsed = new Yaml(new SafeConstructor(options), new Representer(new DumperOptions()), new DumperOptions(), options,
          resolver).load(reader);
      Map<String, Object> values = new LinkedHashMap<>();
      if (parsed == null) {
        return values;
      }
      if (!(parsed instanceof Map<?, ?> map)) {
        throw new ConfigException(source + ": expected a mapping of setting: value");
      }
      map.forEach((k, v) -> values.put(String.valueOf(k), v));
      return values;
    } catch (DuplicateKeyException e) {
      String problem = String.valueOf(e.getProblem()).replaceFirst("^found duplicate key ", "");
      throw new ConfigException(source + ": " + problem + " is given twice (line " + (e.getProblemMark().getLine() + 1)
          + "); keep one");
    } catch (IOException | YAMLException e) {
      throw new ConfigException(source + ": not valid YAML (" + String.valueOf(e.getMessage()).lines().findFirst().orElse("") + ")");
    }
  }

  /** Resolves no implicit type but null ({@code ~}, {@code null} or nothing): every other plain scalar is a string. */
  private static final class TextOnly extends Resolver {
    @Override
    protected void addImplicitResolvers() {
      addImplicitResolver(Tag.NULL, NULL, "~nN\0");
      addImplicitResolver(Tag.NULL, EMPTY, null);
    }
  }
}
