package dev.idemgate.reconciliation;

import dev.idemgate.auth.CredentialScanner;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Whether reconciliation knows the provider a run is asked for: the settings map its columns
 * ({@code column_map.P}), or the ledger has a payment of it. A name nothing knows (a typo, an empty
 * {@code --provider ''}) would compare the file with no payment at all and report every row as an
 * ORPHAN_AT_PROVIDER, whose remediation is a refund; it is refused before a run is stored.
 *
 * <p>{@code payments.provider} has no index. The lookup stops at the first payment found, so a
 * provider with payments costs little; a name the ledger lacks is a sequential scan (about 0.2 s a
 * million payments, less than the run's own read of its window), and only a refusal lists the
 * ledger's providers, a second scan.
 */
final class KnownProviders {
  /** The most names of the ledger a refusal lists (the settings' are few and all listed, up to as many). */
  static final int LISTED = 20;
  /** Each lookup's deadline: a scan of a very large ledger gives up instead of holding the run's thread. */
  private static final int QUERY_TIMEOUT_SECONDS = 60;
  /** The characters of the name asked for that a refusal repeats. */
  private static final int ECHOED = 60;

  private KnownProviders() {}

  /**
   * Empty when {@code provider} may be reconciled, otherwise the one line that says why not and
   * which providers are known.
   *
   * @param option how the caller named the provider ({@code --provider}, {@code provider})
   * @param alsoKnown names known without the ledger (the payments {@code settlement-demo} is about to seed)
   */
  static Optional<String> refusal(Connection c, ReconciliationSettings settings, String option, String provider,
      Set<String> alsoKnown) throws SQLException {
    boolean blank = provider.isBlank();
    if (!blank && (settings.columnMaps().containsKey(provider) || alsoKnown.contains(provider) || inLedger(c, provider))) {
      return Optional.empty();
    }
    List<String> mapped = new ArrayList<>(settings.columnMaps().keySet());
    mapped.sort(null);
    String why = blank
        ? option + " is empty"
        : option + " '" + SettlementReader.echo(provider, ECHOED, CredentialScanner.NONE) + "' names no provider reconciliation knows: "
            + "no column_map." + SettlementReader.echo(provider, ECHOED, CredentialScanner.NONE) + " in the reconciliation settings and no "
            + "payment of it in the ledger";
    return Optional.of(why + " (the ledger has " + names(ledgerProviders(c)) + "; column_map has "
        + names(mapped.size() > LISTED ? mapped.subList(0, LISTED + 1) : mapped)
        + "). Leave " + option + " out for every provider's payments, or name the provider under column_map (an "
        + "empty mapping {} when its file has the usual column names); nothing was run");
  }

  private static boolean inLedger(Connection c, String provider) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("SELECT 1 FROM idemgate.payments WHERE provider = ? LIMIT 1")) {
      s.setQueryTimeout(QUERY_TIMEOUT_SECONDS);
      s.setString(1, provider);
      try (ResultSet rs = s.executeQuery()) {
        return rs.next();
      }
    }
  }

  /** The ledger's providers, most payments first: at most {@link #LISTED}, and one more to tell that there are more. */
  private static List<String> ledgerProviders(Connection c) throws SQLException {
    List<String> names = new ArrayList<>();
    try (PreparedStatement s = c.prepareStatement(
        "SELECT provider FROM idemgate.payments GROUP BY provider ORDER BY count(*) DESC, provider LIMIT " + (LISTED + 1))) {
      s.setQueryTimeout(QUERY_TIMEOUT_SECONDS);
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          names.add(rs.getString(1));
        }
      }
    }
    return names;
  }

  private static String names(List<String> names) {
    if (names.isEmpty()) {
      return "none";
    }
    List<String> shown = new ArrayList<>();
    for (String name : names.subList(0, Math.min(LISTED, names.size()))) {
      shown.add(SettlementReader.echo(name, ECHOED, CredentialScanner.NONE));
    }
    return String.join(", ", shown) + (names.size() > LISTED ? ", …" : "");
  }
}
