package dev.idemgate.anomaly;

import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * What the gateway does with a twin: the same payment arriving under a different idempotency key
 * within the duplicate window (setting {@code duplicate_payload_policy}).
 */
public enum DuplicatePayloadPolicy {
  /** No twin check at all: nothing is spent on the hot path. */
  OFF,
  /** Twins are charged as usual, but counted per client and judged (the default). */
  FLAG,
  /** Twins are also answered 409 duplicate_payment_suspected unless the repeat is declared intended. */
  REJECT;

  /** Body fields a payment fingerprint may be built from (setting {@code duplicate_fields}). */
  public static final List<String> FINGERPRINT_FIELDS =
      List.of("amount", "currency", "source", "merchant_reference", "description", "metadata");

  public static Optional<DuplicatePayloadPolicy> parse(String text) {
    String s = text == null ? "" : text.trim().toLowerCase(Locale.ROOT);
    for (DuplicatePayloadPolicy p : values()) {
      if (p.setting().equals(s)) {
        return Optional.of(p);
      }
    }
    return Optional.empty();
  }

  /** The setting's spelling, also the {@code policy} tag of the anomaly metrics. */
  public String setting() {
    return name().toLowerCase(Locale.ROOT);
  }
}
