package dev.idemgate.payment;

import dev.idemgate.payment.ParsedPayment.FieldError;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Currency;
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

  public static ParsedPayment parse(Buffer raw) {
    JsonObject body;
    try {
      body = raw == null || raw.length() == 0 ? null : new JsonObject(raw);
    } catch (DecodeException | ClassCastException e) {
      body = null;
    }
    if (body == null) {
      return new ParsedPayment.Invalid(List.of(new FieldError("$", "the body must be a JSON object")));
    }
    Optional<String> card = CardNumberScanner.findCardNumber(body);
    if (card.isPresent()) {
      return new ParsedPayment.CardData(card.get());
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
    if (text.isEmpty() || text.length() > max || text.chars().anyMatch(Character::isISOControl)) {
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
      if (e.getKey().isEmpty() || e.getKey().length() > 40 || e.getKey().chars().anyMatch(Character::isISOControl)) {
        errors.add(new FieldError("metadata", "keys must be 1-40 characters without control characters"));
        return null;
      }
      // PostgreSQL stores no U+0000 in text or jsonb; a value with one would fail its whole claim group.
      if (!(e.getValue() instanceof String s) || s.length() > 500 || s.indexOf('\u0000') >= 0) {
        errors.add(new FieldError("metadata." + e.getKey(), "must be a string of at most 500 characters, without U+0000"));
        return null;
      }
    }
    return object;
  }

  private static String describe(Object value) {
    if (value instanceof Double || value instanceof Float || value instanceof BigDecimal) {
      return "a decimal number";
    }
    return value instanceof String ? "a string" : "a " + value.getClass().getSimpleName().toLowerCase();
  }
}
