package dev.idemgate.auth;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Finds the gateway's own credentials in text a client sent, for the places that keep or log such
 * text: the API key a request presents, any API key in force now ({@code api_keys}, and
 * {@code api_keys_file} as last reloaded) and the admin token. What a card number found there
 * becomes ({@code redacted:card_number}, a 400), a credential becomes too.
 *
 * <p>How each is looked for follows from how the gateway holds it. The admin token and the key the
 * request presents, when it is one in force, are known in full: found anywhere in the text
 * ({@code trace-<key>-1}). The keys
 * in force are known only by their SHA-256 ({@link MerchantKeys}): each word of the text is hashed
 * and looked up, a word being a run of visible ASCII between anything else (white space, non-ASCII
 * characters), and each run of {@code A-Z a-z 0-9 _ -} (the characters of keys {@code idemgate api-key}
 * makes) inside a word that holds other characters too ({@code key="sk_live_…".}). A key in force
 * glued to other letters of that set ({@code ref-sk_live_…}) is therefore not found, unless it is the
 * request's own. Words under 8 characters, which no key is, are not hashed; nor is anything when no
 * key is in force.
 *
 * <p>Cost: one SHA-256 of a few dozen bytes per word of 8 or more characters (about a tenth of a
 * microsecond with the CPU's SHA instructions), and a lookup that leaves all but the rare word whose
 * hash shares its first 64 bits with a key's at a binary search of a {@code long[]}: comparable to
 * the card-number scan over the same text (bench/jmh, CredentialScannerBenchmark).
 */
public final class CredentialScanner {
  /** What is found: which of the gateway's credentials, and what a text holding it is kept or logged as. */
  public enum Credential {
    API_KEY("redacted:api_key", "an API key"),
    ADMIN_TOKEN("redacted:admin_token", "the admin token");

    private final String redacted;
    private final String named;

    Credential(String redacted, String named) {
      this.redacted = redacted;
      this.named = named;
    }

    /** What a text holding this credential is kept or logged as: {@code redacted:api_key}, {@code redacted:admin_token}. */
    public String redacted() {
      return redacted;
    }

    /** How a refusal names it: "an API key", "the admin token". */
    public String named() {
      return named;
    }
  }

  /** Where in a JSON body a credential was found, as a JSON path ({@code $.metadata.note}), and which. */
  public record Found(String path, Credential credential) {}

  /** Finds nothing: no key is in force and no admin token set (tests of parts that run without them). */
  public static final CredentialScanner NONE = new CredentialScanner(MerchantKeys.none(), Optional.empty());

  /** The shortest API key (GatewayConfig.API_KEY); the admin token is longer. */
  public static final int MIN_KEY_CHARS = 8;

  private final MerchantKeys keys;
  private final String adminToken;

  /**
   * @param keys the API keys in force, read at each look (a reload of the key file counts at once)
   * @param adminToken the admin token, if one is set
   */
  public CredentialScanner(MerchantKeys keys, Optional<String> adminToken) {
    this.keys = keys;
    this.adminToken = adminToken.filter(token -> !token.isEmpty()).orElse(null);
  }

  /**
   * The credential {@code text} holds, or null.
   *
   * @param presented the credential the request carries (its {@code Authorization: Bearer} token), null if none:
   *     found anywhere in the text when it is a key in force. A token that is none is no secret, and
   *     counting it would let any caller hide what it sent from the log: {@code Bearer /admin/reconciliations}
   *     blanked that path in the management port's access line, its audit trail.
   */
  public Credential find(String text, String presented) {
    if (text == null || text.length() < MIN_KEY_CHARS) {
      return null;
    }
    if (adminToken != null && text.contains(adminToken)) {
      return Credential.ADMIN_TOKEN;
    }
    // Whether the token is a key is asked only when the text holds it: a hash, rarely.
    if (presented != null && presented.length() >= MIN_KEY_CHARS && text.contains(presented)
        && keys.merchantOf(presented) != null) {
      return Credential.API_KEY;
    }
    return keys.size() > 0 && holdsKeyInForce(text) ? Credential.API_KEY : null;
  }

  /**
   * The token of one {@code Authorization} field value, {@code Bearer <token>} (scheme case-insensitive,
   * RFC 6750), or null when it is not a bearer credential.
   */
  public static String bearerToken(String authorization) {
    return authorization != null && authorization.regionMatches(true, 0, "Bearer ", 0, 7)
        ? authorization.substring(7).trim() : null;
  }

  /** {@code text}, or what it is kept as when it holds a credential ({@link Credential#redacted}). */
  public String redact(String text, String presented) {
    Credential found = find(text, presented);
    return found == null ? text : found.redacted();
  }

  /**
   * The first member name or string (or number: a key may be all digits), at any depth, that holds a
   * credential, with its JSON path; null when none does. As the card-number scan, a name found is
   * shown as {@code <redacted>}.
   */
  public Found findIn(Object json, String presented) {
    StringBuilder path = new StringBuilder("$");
    Credential found = scan(json, presented, path);
    return found == null ? null : new Found(path.toString(), found);
  }

  /** The credential at or under {@code value}, or null; on a find, {@code path} ends with where it is. */
  private Credential scan(Object value, String presented, StringBuilder path) {
    if (value instanceof JsonObject object) {
      return scanMap(object.getMap(), presented, path);
    } else if (value instanceof Map<?, ?> map) {
      return scanMap(map, presented, path);
    } else if (value instanceof JsonArray array) {
      return scanList(array.getList(), presented, path);
    } else if (value instanceof List<?> list) {
      return scanList(list, presented, path);
    } else if (value instanceof String || value instanceof Number) {
      return find(value.toString(), presented);
    }
    return null;
  }

  private Credential scanMap(Map<?, ?> map, String presented, StringBuilder path) {
    int length = path.length();
    for (Map.Entry<?, ?> e : map.entrySet()) {
      String name = String.valueOf(e.getKey());
      Credential inName = find(name, presented);
      if (inName != null) {
        path.append(".<redacted>");
        return inName;
      }
      path.append('.').append(name);
      Credential found = scan(e.getValue(), presented, path);
      if (found != null) {
        return found;
      }
      path.setLength(length);
    }
    return null;
  }

  private Credential scanList(List<?> list, String presented, StringBuilder path) {
    int length = path.length();
    for (int i = 0; i < list.size(); i++) {
      path.append('[').append(i).append(']');
      Credential found = scan(list.get(i), presented, path);
      if (found != null) {
        return found;
      }
      path.setLength(length);
    }
    return null;
  }

  /** Whether a word of {@code text}, or a run of key characters inside one, is a key in force (see the class comment). */
  private boolean holdsKeyInForce(String text) {
    int n = text.length();
    int i = 0;
    while (i < n) {
      if (!isVisibleAscii(text.charAt(i))) {
        i++;
        continue;
      }
      int start = i;
      boolean other = false;
      while (i < n && isVisibleAscii(text.charAt(i))) {
        other |= !isKeyCharacter(text.charAt(i));
        i++;
      }
      if (i - start < MIN_KEY_CHARS) {
        continue;
      }
      if (isKeyInForce(text, start, i)) {
        return true;
      }
      if (other) {
        int j = start;
        while (j < i) {
          if (!isKeyCharacter(text.charAt(j))) {
            j++;
            continue;
          }
          int runStart = j;
          while (j < i && isKeyCharacter(text.charAt(j))) {
            j++;
          }
          if (j - runStart >= MIN_KEY_CHARS && isKeyInForce(text, runStart, j)) {
            return true;
          }
        }
      }
    }
    return false;
  }

  /** Whether {@code text[from, to)}, visible ASCII, is an API key in force: its SHA-256, with no String or hex made. */
  private boolean isKeyInForce(String text, int from, int to) {
    Scratch scratch = SCRATCH.get();
    byte[] bytes = scratch.bytes(to - from);
    for (int k = from; k < to; k++) {
      bytes[k - from] = (byte) text.charAt(k); // visible ASCII: its UTF-8 is itself
    }
    scratch.digest.update(bytes, 0, to - from);
    return keys.isKeyDigest(scratch.digest.digest());
  }

  private static boolean isVisibleAscii(char c) {
    return c >= 0x21 && c <= 0x7e;
  }

  private static boolean isKeyCharacter(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  }

  /** A digest and a byte buffer per thread: looking the algorithm up costs more than hashing a word. */
  private static final class Scratch {
    final MessageDigest digest;
    private byte[] bytes = new byte[128];

    Scratch() {
      try {
        digest = MessageDigest.getInstance("SHA-256");
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException("every JVM has SHA-256", e);
      }
    }

    byte[] bytes(int length) {
      if (bytes.length < length) {
        bytes = new byte[Math.max(length, bytes.length * 2)];
      }
      return bytes;
    }
  }

  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);
}
