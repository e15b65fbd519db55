package dev.idemgate.payment;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.payment.ParsedPayment.FieldError;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.json.jackson.JacksonCodec;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Currency;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/** Reads and validates a {@code POST /pay} body (DESIGN §2). Card data is looked for before anything else. */
public final class PaymentRequestParser {
  public static final long MAX_AMOUNT = 1_000_000_000_000L;
  private static final Set<String> FIELDS =
      Set.of("amount", "currency", "source", "merchant_reference", "description", "metadata");
  /**
   * Codes the JDK knows that no acquirer charges: precious metals, bond units, testing and
   * "no currency" codes (XAU, XTS, XXX …), and currencies withdrawn for good (the euro's
   * predecessors, redenominated ones such as TRL or ZMK, CUC). An acquirer would refuse them with
   * a 4xx, which reads as "not attempted, retrying is safe": the client would retry a payment that
   * can never work instead of hearing that its request is wrong. Codes still in a transition
   * (ANG, SLL, ZWL) stay accepted: refusing a currency a merchant still uses is the worse mistake.
   */
  private static final Set<String> NOT_CHARGEABLE = Set.of(
      "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XFO", "XFU", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX",
      "ADP", "ATS", "BEF", "CYP", "DEM", "EEK", "ESP", "FIM", "FRF", "GRD", "HRK", "IEP", "ITL", "LTL", "LUF", "LVL",
      "MTL", "NLG", "PTE", "SIT", "SKK",
      "AFA", "AYM", "AZM", "BGL", "BYB", "BYR", "CSD", "CUC", "GHC", "GWP", "MGF", "MRO", "MZM", "ROL", "RUR", "SDD",
      "SRG", "STD", "TMM", "TPE", "TRL", "USS", "VEB", "VEF", "YUM", "ZMK", "ZWD", "ZWN", "ZWR");
  private static final Set<String> CURRENCIES = Currency.getAvailableCurrencies().stream().map(Currency::getCurrencyCode)
      .filter(code -> !NOT_CHARGEABLE.contains(code)).collect(Collectors.toUnmodifiableSet());
  private static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9_-]{1,255}");
  private static final int MAX_METADATA_KEYS = 50;

  private PaymentRequestParser() {}

  /**
   * Strict JSON (RFC 8259): no comments (Vert.x's own parser takes them) and no member named twice.
   * A lenient parser reads what the client did not mean, and what another reader of the same bytes
   * (a proxy, a log) would not: {@code {"amount":1,"amount":2}} charged 2, and a card number in a
   * comment, or in the first of two members of one name, passed the card scan.
   */
  private static final JsonFactory STRICT_JSON =
      JsonFactory.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();
  private static final JsonFactory LENIENT_JSON = JsonFactory.builder().build();

  /** {@link #parse(Buffer, CredentialScanner, String)} where no credential is known (tests, benchmarks). */
  public static ParsedPayment parse(Buffer raw) {
    return parse(raw, null, null);
  }

  /**
   * @param credentials the gateway's credentials, looked for right after card data: a body holding one
   *     is refused as one holding a card number is, since the body is stored and sent to the acquirer
   * @param presented the API key the request was sent with
   */
  public static ParsedPayment parse(Buffer raw, CredentialScanner credentials, String presented) {
    JsonObject body = strictObject(raw);
    if (body == null) {
      return new ParsedPayment.Invalid(List.of(new FieldError("$",
          "the body must be one JSON object in UTF-8 (RFC 8259: no comments, no member named twice)")));
    }
    if (hasLoneSurrogate(body)) {
      // Stored, such a string becomes '?': two different payloads would read as one and replay.
      return new ParsedPayment.Invalid(List.of(new FieldError("$",
          "a string holds an unpaired surrogate escape (\\ud800-\\udfff alone): it is not text")));
    }
    Optional<String> card = CardNumberScanner.findCardNumber(body);
    if (card.isPresent()) {
      return new ParsedPayment.CardData(card.get());
    }
    CredentialScanner.Found credential = credentials == null ? null : credentials.findIn(body, presented);
    if (credential != null) {
      return new ParsedPayment.CredentialData(credential.path(), credential.credential());
    }
    List<FieldError> errors = new ArrayList<>();
    for (String field : body.fieldNames()) {
      if (!FIELDS.contains(field)) {
        errors.add(new FieldError(field, "unknown field"));
      }
    }
    long amount = amount(body.getValue("amount"), errors);
    String currency = currency(body.getValue("currency"), errors);
    String source = source(body.getValue("source"), errors);
    String reference = optionalText(body, "merchant_reference", 255, errors);
    String description = optionalText(body, "description", 1000, errors);
    JsonObject metadata = metadata(body.getValue("metadata"), errors);
    if (!errors.isEmpty()) {
      return new ParsedPayment.Invalid(List.copyOf(errors));
    }
    return new ParsedPayment.Valid(new PaymentRequest(amount, currency, source, reference, description, metadata), body);
  }

  private static long amount(Object value, List<FieldError> errors) {
    if (value == null) {
      errors.add(new FieldError("amount", "required: an integer amount in minor units (1999 for 19.99)"));
      return 0;
    }
    if (!(value instanceof Integer || value instanceof Long || value instanceof BigInteger)) {
      errors.add(new FieldError("amount", "must be an integer amount in minor units, not " + describe(value)));
      return 0;
    }
    BigInteger n = new BigInteger(value.toString());
    if (n.signum() <= 0 || n.compareTo(BigInteger.valueOf(MAX_AMOUNT)) > 0) {
      errors.add(new FieldError("amount", "must be between 1 and " + MAX_AMOUNT));
      return 0;
    }
    return n.longValueExact();
  }

  private static String currency(Object value, List<FieldError> errors) {
    if (!(value instanceof String code)) {
      errors.add(new FieldError("currency", value == null ? "required: an ISO 4217 code such as EUR" : "must be a string"));
      return null;
    }
    if (!CURRENCIES.contains(code)) {
      errors.add(new FieldError("currency", "must be an upper-case ISO 4217 code of a currency in use, such as EUR"));
      return null;
    }
    return code;
  }

  private static String source(Object value, List<FieldError> errors) {
    if (!(value instanceof String token)) {
      errors.add(new FieldError("source", value == null ? "required: a payment token such as tok_visa" : "must be a string"));
      return null;
    }
    if (!TOKEN.matcher(token).matches()) {
      errors.add(new FieldError("source", "must be a payment token: 1-255 of A-Z a-z 0-9 _ -"));
      return null;
    }
    return token;
  }

  private static String optionalText(JsonObject body, String field, int max, List<FieldError> errors) {
    Object value = body.getValue(field);
    if (value == null) {
      return null;
    }
    if (!(value instanceof String text)) {
      errors.add(new FieldError(field, "must be a string"));
      return null;
    }
    if (text.isEmpty() || characters(text) > max || text.chars().anyMatch(Character::isISOControl)) {
      errors.add(new FieldError(field, "must be 1-" + max + " characters without control characters"));
      return null;
    }
    return text;
  }

  private static JsonObject metadata(Object value, List<FieldError> errors) {
    if (value == null) {
      return null;
    }
    if (!(value instanceof JsonObject object)) {
      errors.add(new FieldError("metadata", "must be an object of string values"));
      return null;
    }
    if (object.size() > MAX_METADATA_KEYS) {
      errors.add(new FieldError("metadata", "at most " + MAX_METADATA_KEYS + " keys"));
      return null;
    }
    for (Map.Entry<String, Object> e : object) {
      if (e.getKey().isEmpty() || characters(e.getKey()) > 40 || e.getKey().chars().anyMatch(Character::isISOControl)) {
        errors.add(new FieldError("metadata", "keys must be 1-40 characters without control characters"));
        return null;
      }
      // PostgreSQL stores no U+0000 in text or jsonb; a value with one would fail its whole claim group.
      if (!(e.getValue() instanceof String s) || characters(s) > 500 || s.indexOf('\u0000') >= 0) {
        errors.add(new FieldError("metadata." + e.getKey(), "must be a string of at most 500 characters, without U+0000"));
        return null;
      }
    }
    return object;
  }

  /** The body as a JSON object, or null when it is not valid UTF-8 or not one strict JSON object. */
  public static JsonObject strictObject(Buffer raw) {
    String text = raw == null || raw.length() == 0 ? null : utf8Text(raw);
    if (text == null) {
      return null;
    }
    try (JsonParser parser = STRICT_JSON.createParser(text)) {
      return JacksonCodec.fromParser(parser, Object.class) instanceof JsonObject object ? object : null;
    } catch (DecodeException | IOException e) {
      return null;
    }
  }

  /**
   * {@code raw} as text, without a leading byte-order mark (.NET and PowerShell write one: RFC 8259
   * lets a parser ignore it); null when it is not valid UTF-8, which is refused, not replaced (an
   * overlong "/", a surrogate encoded in three bytes).
   */
  private static String utf8Text(Buffer raw) {
    String text;
    try {
      text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(raw.getBytes())).toString();
    } catch (CharacterCodingException e) {
      return null;
    }
    return text.startsWith("\uFEFF") ? text.substring(1) : text;
  }

  /**
   * Why {@link #strictObject} refused {@code raw}, for a 400 that names the fault: empty, not UTF-8,
   * not JSON (and where), more than one value, not an object, or a member named twice (and which);
   * null when it is one strict JSON object. Reads the body again, so it is for refusals only.
   */
  public static String whyNotOneObject(Buffer raw) {
    if (raw == null || raw.length() == 0) {
      return "the body is empty";
    }
    String text = utf8Text(raw);
    if (text == null) {
      return "the body is not UTF-8";
    }
    // Without duplicate detection, so that the walk below finds the member named twice and says which.
    try (JsonParser parser = LENIENT_JSON.createParser(text)) {
      JsonToken first = parser.nextToken();
      if (first == null) {
        return "the body holds no JSON value, only white space";
      }
      // The members named so far in each object open, innermost first.
      Deque<Set<String>> objects = new ArrayDeque<>();
      for (JsonToken token = first; ; token = parser.nextToken()) {
        if (token == null) {
          return "the body is not JSON (it ends inside a value)";
        } else if (token == JsonToken.START_OBJECT) {
          objects.push(new HashSet<>());
        } else if (token == JsonToken.END_OBJECT) {
          objects.pop();
        } else if (token == JsonToken.FIELD_NAME && !objects.peek().add(parser.currentName())) {
          return "member " + memberName(parser.currentName()) + " is sent twice"
              + (objects.size() > 1 ? ", in a nested object" : "") + " (which one would count is a guess)";
        }
        if (parser.getParsingContext().inRoot()) {
          break; // the first value is read whole
        }
      }
      if (parser.nextToken() != null) {
        return "the body holds more than one JSON value";
      }
      if (first != JsonToken.START_OBJECT) {
        return "the body is JSON but not an object";
      }
      return null;
    } catch (JsonProcessingException e) {
      JsonLocation where = e.getLocation();
      return "the body is not JSON" + (where == null ? ""
          : " (line " + where.getLineNr() + ", column " + where.getColumnNr() + ")");
    } catch (IOException e) {
      return "the body is not JSON";
    }
  }

  /**
   * A member name as a refusal may show it: printable ASCII of at most 64 characters as it is, any
   * other (a control character, half a surrogate pair, a page of text) not at all.
   */
  public static String memberName(String name) {
    return name.length() <= 64 && name.chars().allMatch(c -> c >= 0x20 && c < 0x7f) ? name : "(a name not shown)";
  }

  /** Whether any member name or string, at any depth, holds a surrogate that is not half of a pair. */
  public static boolean hasLoneSurrogate(Object json) {
    if (json instanceof JsonObject object) {
      for (Map.Entry<String, Object> e : object) {
        if (loneSurrogate(e.getKey()) || hasLoneSurrogate(e.getValue())) {
          return true;
        }
      }
    } else if (json instanceof JsonArray array) {
      for (Object element : array) {
        if (hasLoneSurrogate(element)) {
          return true;
        }
      }
    } else if (json instanceof String text) {
      return loneSurrogate(text);
    }
    return false;
  }

  private static boolean loneSurrogate(String text) {
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        return true;
      }
    }
    return false;
  }

  /** Characters as a person counts them: an emoji is one, not two UTF-16 units. */
  private static int characters(String text) {
    return text.codePointCount(0, text.length());
  }

  private static String describe(Object value) {
    if (value instanceof Double || value instanceof Float || value instanceof BigDecimal) {
      return "a decimal number";
    }
    return value instanceof String ? "a string" : "a " + value.getClass().getSimpleName().toLowerCase();
  }
}
