package dev.idemgate.provider;

/**
 * One charge as sent to a provider. {@code providerKey} makes the provider deduplicate too;
 * {@code reference} is the gateway's payment id. {@code source} is a payment token, never card data.
 *
 * @param sendByNanos {@link System#nanoTime()} after which the charge must not be sent any more: the
 *     claim's lease has run out, so recovery may already have released the record. A process that was
 *     paused (GC, SIGSTOP) past its lease wakes up to find this passed and sends nothing.
 */
public record ChargeRequest(String providerKey, long amount, String currency, String source, String reference, long sendByNanos) {
  /** A charge with no send deadline (tools and tests that talk to a provider directly). */
  public ChargeRequest(String providerKey, long amount, String currency, String source, String reference) {
    this(providerKey, amount, currency, source, reference, Long.MAX_VALUE);
  }

  /** True while the charge may still be sent. */
  public boolean maySend() {
    return sendByNanos == Long.MAX_VALUE || System.nanoTime() - sendByNanos < 0;
  }
}
