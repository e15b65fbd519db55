package dev.idemgate.reconciliation;

import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Writes a provider's settlement file (DESIGN §6 columns) for a stream of charges, as an acquirer
 * would at the end of a day: every succeeded charge settled once, a few hours after it was made.
 * A {@link Plan} can plant the discrepancies reconciliation must find (duplicates, missing rows,
 * amount drift, currency swaps, orphans, reversals, settled declines) and the noise it must see
 * through (references in another format, rows without any reference). Each row, and each charge
 * left out, is reported to a listener with what was planted, so tests know the truth.
 *
 * <p>Deterministic for a given seed and input. Rows are written as charges come in: memory does
 * not grow with the file.
 */
public final class SettlementFileWriter implements Closeable {
  /** A charge as the provider knows it. {@code status} is the ledger's: succeeded, declined or pending. */
  public record Charge(String paymentId, String providerReference, String providerKey, String merchantId,
                       long amount, String currency, String status, Instant chargedAt) {}

  /** What a row (or a left-out charge) carries. */
  public enum Plant {
    /** Settled a second time: expect DUPLICATE_CHARGE. */
    DUPLICATE,
    /** Not in the file at all: expect MISSING_IN_SETTLEMENT once past the lag. */
    MISSING,
    /** Settled for a slightly different amount: expect AMOUNT_MISMATCH. */
    AMOUNT_DRIFT,
    /** Settled in another currency: expect CURRENCY_MISMATCH. */
    CURRENCY_SWAP,
    /** Settled money with no ledger payment: expect ORPHAN_AT_PROVIDER. */
    ORPHAN,
    /** A chargeback row after the settlement: expect STATUS_MISMATCH. */
    CHARGEBACK,
    /** A declined payment that the provider settled: expect STATUS_MISMATCH. */
    DECLINED_SETTLED,
    /** Reference in another format (upper case, dashes): still a certain match. */
    REFERENCE_REFORMATTED,
    /** No reference and no provider key: matched probabilistically. */
    REFERENCES_REMOVED
  }

  /**
   * Rates of each plant, between 0 and 1. The first seven are exclusive (at most one per charge);
   * {@code referencesRemoved} applies on top of any of them.
   */
  public record Plan(double duplicate, double missing, double amountDrift, double currencySwap, double orphan,
                     double chargeback, double declinedSettled, double referenceReformatted, double referencesRemoved) {
    /** A clean file: every succeeded charge settled once. */
    public static Plan none() {
      return new Plan(0, 0, 0, 0, 0, 0, 0, 0, 0);
    }

    /** A few of everything, for demos and the scale benchmark. */
    public static Plan demo() {
      return new Plan(0.01, 0.01, 0.01, 0.003, 0.01, 0.003, 0.2, 0.05, 0.02);
    }
  }

  /**
   * One row written ({@code line} > 0) or one charge left out ({@code line} 0).
   *
   * @param paymentId the ledger payment the row belongs to; null for an orphan
   */
  public record Written(long line, String settlementId, String paymentId, Set<Plant> plants) {}

  private static final List<String> CURRENCY_SWAPS = List.of("EUR", "USD", "GBP");

  private final Writer out;
  private final Plan plan;
  private final Random random;
  private final Instant notAfter;
  private final Consumer<Written> listener;
  private final String idPrefix;
  private long line = 1;
  private long sequence;
  /** The rows written so far for the charge being settled. */
  private int ofCharge;

  /**
   * @param columnMap canonical to provider column names for the header (empty: canonical names)
   * @param notAfter no settlement is dated after this (normally now)
   * @param listener told of every row and every left-out charge; may be {@code w -> {}}
   */
  public SettlementFileWriter(Writer out, Map<String, String> columnMap, Plan plan, long seed, Instant notAfter,
      Consumer<Written> listener) {
    this.out = out;
    this.plan = plan;
    this.random = new Random(seed);
    this.notAfter = notAfter;
    this.listener = listener;
    this.idPrefix = "stl_" + Long.toString(seed & 0xffffff, 36) + "_";
    List<String> header = new ArrayList<>();
    for (String column : SettlementReader.COLUMNS) {
      header.add(columnMap.getOrDefault(column, column));
    }
    writeLine(header.toArray(String[]::new));
  }

  /** Settles one charge: zero, one or two rows, and maybe an orphan after it. */
  public void write(Charge charge) {
    ofCharge = 0;
    double draw = random.nextDouble();
    boolean noReferences = random.nextDouble() < plan.referencesRemoved();
    Instant settledAt = settleTime(charge.chargedAt());
    if (charge.status().equals("succeeded")) {
      double edge = plan.missing();
      if (draw < edge) {
        listener.accept(new Written(0, null, charge.paymentId(), EnumSet.of(Plant.MISSING)));
      } else if (draw < (edge += plan.duplicate())) {
        row(charge, charge.amount(), charge.currency(), "settled", settledAt, noReferences, false, EnumSet.noneOf(Plant.class));
        row(charge, charge.amount(), charge.currency(), "settled", settledAt.plus(Duration.ofHours(1 + random.nextInt(6))),
            noReferences, false, EnumSet.of(Plant.DUPLICATE));
      } else if (draw < (edge += plan.amountDrift())) {
        long drift = Math.max(1, Math.round(charge.amount() * (0.005 + 0.025 * random.nextDouble())));
        long amount = random.nextBoolean() || charge.amount() <= drift ? charge.amount() + drift : charge.amount() - drift;
        row(charge, amount, charge.currency(), "settled", settledAt, noReferences, false, EnumSet.of(Plant.AMOUNT_DRIFT));
      } else if (draw < (edge += plan.currencySwap())) {
        String other = CURRENCY_SWAPS.get((CURRENCY_SWAPS.indexOf(charge.currency()) + 1) % CURRENCY_SWAPS.size());
        row(charge, charge.amount(), other, "settled", settledAt, noReferences, false, EnumSet.of(Plant.CURRENCY_SWAP));
      } else if (draw < (edge += plan.chargeback())) {
        row(charge, charge.amount(), charge.currency(), "settled", settledAt, noReferences, false, EnumSet.noneOf(Plant.class));
        row(charge, charge.amount(), charge.currency(), "chargeback", settledAt.plus(Duration.ofHours(2)), noReferences,
            false, EnumSet.of(Plant.CHARGEBACK));
      } else {
        boolean reformat = draw < edge + plan.referenceReformatted();
        row(charge, charge.amount(), charge.currency(), "settled", settledAt, noReferences, reformat,
            reformat ? EnumSet.of(Plant.REFERENCE_REFORMATTED) : EnumSet.noneOf(Plant.class));
      }
    } else if (charge.status().equals("declined") && charge.providerReference() != null
        && random.nextDouble() < plan.declinedSettled()) {
      row(charge, charge.amount(), charge.currency(), "settled", settledAt, false, false, EnumSet.of(Plant.DECLINED_SETTLED));
    }
    if (random.nextDouble() < plan.orphan()) {
      long amount = 100 + random.nextInt(50_000);
      Charge orphan = new Charge(null, "ch_orphan_" + HexFormat.of().toHexDigits(random.nextLong()), null,
          charge.merchantId(), amount, charge.currency(), "succeeded", charge.chargedAt().plus(Duration.ofMinutes(random.nextInt(600))));
      row(orphan, amount, orphan.currency(), "settled", settleTime(orphan.chargedAt()), noReferences, false, EnumSet.of(Plant.ORPHAN));
    }
  }

  private Instant settleTime(Instant chargedAt) {
    Instant at = chargedAt.plus(Duration.ofMinutes(30 + random.nextInt(30 * 60))).truncatedTo(ChronoUnit.SECONDS);
    return at.isAfter(notAfter) ? notAfter.truncatedTo(ChronoUnit.SECONDS) : at;
  }

  private void row(Charge charge, long amount, String currency, String status, Instant settledAt, boolean noReferences,
      boolean reformat, Set<Plant> plants) {
    // A ledger payment's rows are named after it, whatever the seed and the other payments: a file
    // written again after more payments were seeded, or with another seed, gives each payment's
    // settlement the id it had, as an acquirer would, so that reconciliation's history of earlier
    // runs sees the same settlement again instead of a second one (a duplicate charge to refund).
    String settlementId = charge.paymentId() == null ? idPrefix + (++sequence)
        : "stl_" + charge.paymentId() + "_" + (++ofCharge);
    String reference = charge.providerReference();
    if (reference != null && reformat) {
      reference = reference.toUpperCase(Locale.ROOT).replace('_', '-');
    }
    Set<Plant> all = EnumSet.noneOf(Plant.class);
    all.addAll(plants);
    if (noReferences) {
      all.add(Plant.REFERENCES_REMOVED);
    }
    long written = writeLine(settlementId, noReferences ? "" : reference,
        noReferences || charge.providerKey() == null ? "" : charge.providerKey(),
        charge.merchantId(), Long.toString(amount), currency, status, settledAt.toString());
    listener.accept(new Written(written, settlementId, charge.paymentId(), all));
  }

  /** Writes one CSV line (RFC 4180 quoting) and returns its line number. */
  private long writeLine(String... fields) {
    try {
      for (int i = 0; i < fields.length; i++) {
        if (i > 0) {
          out.write(',');
        }
        String f = fields[i] == null ? "" : fields[i];
        boolean quote = f.indexOf(',') >= 0 || f.indexOf('"') >= 0 || f.indexOf('\n') >= 0 || f.indexOf('\r') >= 0;
        out.write(quote ? '"' + f.replace("\"", "\"\"") + '"' : f);
      }
      out.write('\n');
      return line++;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Flushes; the caller owns and closes the underlying writer. */
  @Override
  public void close() throws IOException {
    out.flush();
  }
}
