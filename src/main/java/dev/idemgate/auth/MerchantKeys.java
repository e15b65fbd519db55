package dev.idemgate.auth;

import dev.idemgate.config.GatewayConfig;
import dev.idemgate.config.Unreadable;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which merchant an API key belongs to, for every API verticle of the process: the plain
 * {@code api_keys} (development) and the hashed {@code api_keys_file} (production), both looked
 * up by the SHA-256 of the presented key. The file's keys are replaced whole when the file
 * changes, so a key added to or removed from a mounted secret takes effect without a restart.
 *
 * <p>A file that cannot be read or parsed at start-up stops the start. Later, a bad version is
 * refused with a warning and the keys read before stay in force: a broken rotation must not lock
 * every merchant out. An empty version is refused too (a file rewritten in place reads empty for
 * a moment); one with only comments is valid, and revokes every key.
 */
public final class MerchantKeys {
  private static final Logger log = LoggerFactory.getLogger(MerchantKeys.class);

  private final Map<String, String> plainByHash;
  private final long[] plainPrefixes;
  private final Optional<Path> file;
  /** Replaced whole by a reload; read by every API event loop. */
  private volatile Hashes fileKeys;
  // The reload's state, touched only on the reload timer's event loop.
  /** The file's text last looked at (taken or refused), so that each version is judged once. */
  private String lastText;
  /** Why the last read failed, null after a read that worked: each failure is logged once. */
  private String readFailure;
  private boolean reading;
  /** Versions of the file refused, and reads that failed, since start: a meter an alert watches. */
  private final AtomicLong refused = new AtomicLong();

  private MerchantKeys(Map<String, String> plainByHash, Optional<Path> file, String text, Map<String, String> fileByHash) {
    this.plainByHash = plainByHash;
    this.plainPrefixes = prefixes(plainByHash);
    this.file = file;
    this.lastText = text;
    this.fileKeys = new Hashes(fileByHash, prefixes(fileByHash));
  }

  /**
   * The file's keys as last taken: each key's hash to its merchant, and the first 64 bits of every
   * hash, sorted, so that {@link #isKeyDigest} turns down a digest that is no key's without making
   * its hex. One object, so that a reader never sees the hashes of one version with the prefixes
   * of another.
   */
  private record Hashes(Map<String, String> merchantByHash, long[] prefixes) {}

  private static long[] prefixes(Map<String, String> merchantByHash) {
    return merchantByHash.keySet().stream().mapToLong(hex -> Long.parseUnsignedLong(hex.substring(0, 16), 16))
        .sorted().toArray();
  }

  /** No key at all: for the parts of the gateway that tests run without any. */
  static MerchantKeys none() {
    return new MerchantKeys(Map.of(), Optional.empty(), null, Map.of());
  }

  /** Start-up could not read the key file; the message names the file and the line, never a key. */
  public static final class KeyFileUnusable extends RuntimeException {
    KeyFileUnusable(String message) {
      super(message);
    }
  }

  /**
   * The keys of {@code config}, the file read now (blocking: call it before any event loop runs).
   *
   * @throws KeyFileUnusable when the file cannot be read, is empty or does not parse
   */
  public static MerchantKeys load(GatewayConfig config) {
    Map<String, String> plain = new HashMap<>();
    config.apiKeys().forEach((key, merchant) -> plain.put(ApiKeyFile.hash(key), merchant));
    if (config.apiKeysFile().isEmpty()) {
      return new MerchantKeys(Map.copyOf(plain), Optional.empty(), null, Map.of());
    }
    Path path = config.apiKeysFile().get();
    String text;
    try {
      text = Files.readString(path, StandardCharsets.UTF_8);
    } catch (IOException | RuntimeException e) {
      throw new KeyFileUnusable("api_keys_file " + path + " cannot be read: " + Unreadable.reason(path, e));
    }
    if (ApiKeyFile.isBlank(text)) {
      // As on a reload: an empty file is one being written, or a mount gone wrong, not a decision.
      throw new KeyFileUnusable("api_keys_file " + path + " is empty; a file meant to hold no key says so in a comment line");
    }
    try {
      Map<String, String> hashed = ApiKeyFile.parse(text);
      log.info("api_keys_file {}: {}", path, describe(hashed));
      return new MerchantKeys(Map.copyOf(plain), config.apiKeysFile(), text, hashed);
    } catch (ApiKeyFile.InvalidApiKeyFile e) {
      throw new KeyFileUnusable("api_keys_file " + path + ": " + e.getMessage());
    }
  }

  /** The merchant of a presented API key, or null when no key matches. */
  public String merchantOf(String apiKey) {
    String hash = ApiKeyFile.hash(apiKey);
    String merchant = plainByHash.get(hash);
    return merchant != null ? merchant : fileKeys.merchantByHash().get(hash);
  }

  /**
   * Whether {@code sha256} is the SHA-256 of an API key in force now, for {@link CredentialScanner},
   * which hashes every word of a text: most words are no key, and are turned down by a binary search
   * on the hash's first 64 bits, with no hex made.
   */
  boolean isKeyDigest(byte[] sha256) {
    long prefix = 0;
    for (int i = 0; i < 8; i++) {
      prefix = prefix << 8 | (sha256[i] & 0xff);
    }
    Hashes hashes = fileKeys;
    if (Arrays.binarySearch(plainPrefixes, prefix) < 0 && Arrays.binarySearch(hashes.prefixes(), prefix) < 0) {
      return false;
    }
    String hex = HexFormat.of().formatHex(sha256);
    return plainByHash.containsKey(hex) || hashes.merchantByHash().containsKey(hex);
  }

  /**
   * The merchants among {@code merchants} that no key in force now belongs to, sorted. For the
   * per-merchant settings of a gateway with {@code api_keys_file}, whose keys may be added later:
   * warned about at start (a misspelt merchant id would leave its setting unused), not refused.
   */
  public List<String> keyless(Collection<String> merchants) {
    Set<String> withKeys = new HashSet<>(plainByHash.values());
    withKeys.addAll(fileKeys.merchantByHash().values());
    return merchants.stream().filter(m -> !withKeys.contains(m)).distinct().sorted().toList();
  }

  /**
   * Warns once, naming them (never a key), of the merchants of {@code merchant_key_ttl} and
   * {@code merchant_rate_limit} that have no key in force at start.
   */
  public void warnOfKeylessMerchants(GatewayConfig config) {
    List<String> keyless = keyless(java.util.stream.Stream.concat(config.merchantKeyTtl().keySet().stream(),
        config.merchantRateLimit().keySet().stream()).toList());
    if (!keyless.isEmpty()) {
      log.warn("merchant_key_ttl or merchant_rate_limit names merchant(s) with no API key at start: {} (a misspelt "
          + "merchant id? the setting applies only once a key of theirs is in api_keys_file)", String.join(", ", keyless));
    }
  }

  /** How many API keys are in force now: the plain ones and the file's. */
  public int size() {
    return plainByHash.size() + fileKeys.merchantByHash().size();
  }

  /** Versions of the file refused (or reads of it that failed) since start. */
  public long refusedVersions() {
    return refused.get();
  }

  /**
   * Re-reads the file every {@code interval} on an event loop, asynchronously; a no-op without a
   * file. The timer ends when {@code vertx} closes.
   */
  public void reloadEvery(Vertx vertx, Duration interval) {
    file.ifPresent(path -> vertx.setPeriodic(interval.toMillis(), id -> reload(vertx, path)));
  }

  private void reload(Vertx vertx, Path path) {
    if (reading) {
      return; // the read before is still running (a slow volume): one at a time
    }
    reading = true;
    vertx.fileSystem().readFile(path.toString()).onComplete(read -> {
      reading = false;
      if (read.failed()) {
        String problem = Unreadable.reason(null, read.cause()); // no path: its check would block the loop
        if (!problem.equals(readFailure)) {
          readFailure = problem;
          refused.incrementAndGet();
          log.warn("api_keys_file {} cannot be read ({}); the {} keys read before stay in force", path, problem,
              fileKeys.merchantByHash().size());
        }
        return;
      }
      if (readFailure != null) {
        readFailure = null;
        log.info("api_keys_file {} can be read again", path);
      }
      take(path, read.result());
    });
  }

  private void take(Path path, Buffer content) {
    String text = content.toString(StandardCharsets.UTF_8);
    if (text.equals(lastText)) {
      return;
    }
    lastText = text;
    if (ApiKeyFile.isBlank(text)) {
      // A file rewritten in place (truncated, then written) reads empty in between: taken, it would
      // answer 401 to every merchant until the next look. A file meant to hold no key says so.
      refused.incrementAndGet();
      log.warn("api_keys_file {} refused, it is empty (a file being rewritten reads so); the {} keys read before "
          + "stay in force; to revoke every key, leave a comment line in it", path, fileKeys.merchantByHash().size());
      return;
    }
    try {
      Map<String, String> hashed = ApiKeyFile.parse(text);
      fileKeys = new Hashes(hashed, prefixes(hashed));
      log.info("api_keys_file {} reloaded: {}", path, describe(hashed));
    } catch (ApiKeyFile.InvalidApiKeyFile e) {
      refused.incrementAndGet();
      log.warn("api_keys_file {} refused, {}; the {} keys read before stay in force", path, e.getMessage(),
          fileKeys.merchantByHash().size());
    }
  }

  private static String describe(Map<String, String> merchantByHash) {
    return merchantByHash.size() + " keys for " + merchantByHash.values().stream().distinct().count() + " merchants";
  }
}
