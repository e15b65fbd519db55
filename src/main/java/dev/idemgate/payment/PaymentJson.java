package dev.idemgate.payment;

import io.vertx.core.json.JsonObject;
import io.vertx.sqlclient.Row;
import java.time.Instant;
import java.util.concurrent.ThreadLocalRandom;

/** The payment object of the API (DESIGN §2), and payment ids. */
public final class PaymentJson {
  private PaymentJson() {}

  /** {@code pay_} + 12 hex digits of milliseconds (ids sort by creation) + 20 random hex digits. */
  public static String newPaymentId(Instant now) {
    ThreadLocalRandom random = ThreadLocalRandom.current();
    return String.format("pay_%012x%016x%04x", now.toEpochMilli(), random.nextLong(), random.nextInt(0x10000));
  }

  /** Whether {@code id} has the shape {@link #newPaymentId} gives: "pay_" and 32 lower-case hex digits. */
  public static boolean isPaymentId(String id) {
    if (id == null || id.length() != 36 || !id.startsWith("pay_")) {
      return false;
    }
    for (int i = 4; i < id.length(); i++) {
      char c = id.charAt(i);
      if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f')) {
        return false;
      }
    }
    return true;
  }

  public static String render(String id, String status, PaymentRequest request, String provider,
      String providerReference, String declineCode, Instant createdAt) {
    return render(id, status, request.amount(), request.currency(), request.merchantReference(), provider,
        providerReference, declineCode, createdAt);
  }

  /**
   * A payment as GET shows it, from {@code IdempotencyStore#findPayment}'s row. A released payment
   * whose provider key's charge the ledger holds under another payment (the retry with its key) also
   * names that payment, {@code charged_as}: the key's one charge, which this payment's request may
   * have made.
   */
  public static String render(Row row) {
    JsonObject payment = json(row.getString("id"), row.getString("status"), row.getLong("amount"),
        row.getString("currency"), row.getString("merchant_reference"), row.getString("provider"),
        row.getString("provider_reference"), row.getString("decline_code"), row.getOffsetDateTime("created_at").toInstant());
    String chargedAs = row.getString("charged_as");
    return (chargedAs == null ? payment : payment.put("charged_as", chargedAs)).encode();
  }

  public static String render(String id, String status, long amount, String currency, String merchantReference,
      String provider, String providerReference, String declineCode, Instant createdAt) {
    return json(id, status, amount, currency, merchantReference, provider, providerReference, declineCode, createdAt)
        .encode();
  }

  private static JsonObject json(String id, String status, long amount, String currency, String merchantReference,
      String provider, String providerReference, String declineCode, Instant createdAt) {
    return new JsonObject()
        .put("id", id)
        .put("status", status)
        .put("amount", amount)
        .put("currency", currency)
        .put("merchant_reference", merchantReference)
        .put("provider", provider)
        .put("provider_reference", providerReference)
        .put("decline_code", declineCode)
        .put("created_at", createdAt.toString());
  }
}
