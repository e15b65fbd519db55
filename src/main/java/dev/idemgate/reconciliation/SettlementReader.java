package dev.idemgate.reconciliation;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.payment.CardNumberScanner;
import dev.idemgate.payment.PaymentRequestParser;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.DateTimeException;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Currency;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads a settlement CSV (DESIGN §6) one record at a time, so memory stays bounded whatever the
 * file's size: a header row, columns in any order under their canonical names or a provider's
 * names from the column map, extra columns ignored. RFC 4180 quoting (delimiters, quotes and line
 * breaks inside quoted fields) is understood, a line ending at LF, CRLF or a lone CR; the delimiter
 * is the one of {@code , ; TAB |} that splits the header best. A quote left open costs only its own
 * line (see {@link #readRecord}). A line that cannot be used comes back as a {@link MalformedRow} and
 * reading goes on; a file that is not CSV, or lacks a required column, fails at {@link #open}.
 */
public final class SettlementReader implements Closeable {
  /** The canonical columns, in the order of DESIGN §6. */
  public static final List<String> COLUMNS = List.of(
      "settlement_id", "provider_reference", "provider_key", "merchant_id", "amount", "currency", "status", "settled_at");
  static final Set<String> STATUSES = Set.of("settled", "refunded", "chargeback");
  /**
   * The largest amount, as for POST /pay: a 13-19 digit card number pasted into the amount column
   * is a malformed line, never an amount stored (and echoed in reports).
   */
  static final long MAX_AMOUNT = PaymentRequestParser.MAX_AMOUNT;
  /** The characters of a value shown in a malformed line's reason: a 1 MiB field is never copied whole. */
  static final int ECHO_CHARS = 40;
  /**
   * The characters of a value looked at for a credential before a prefix of it is shown: those shown and
   * 1,024 more, so that a key the cut runs through is found whole (a key in force is known only by its
   * hash) unless it is longer than that.
   */
  static final int ECHO_SCANNED = ECHO_CHARS + Credentials.MARGIN;
  /**
   * The longest settlement_id read; a longer one makes its line malformed. The run keeps each
   * discrepancy's settlement_id, and a resolved one is found again through a B-tree index on it
   * ({@code reconciliation_discrepancies_resolved}, V4), whose entries PostgreSQL refuses past 2,704
   * bytes: an id of a few thousand characters that do not compress was reported, and then its
   * discrepancy could never be resolved (every attempt failed with "index row size exceeds"). 500
   * characters are at most 1,500 bytes of UTF-8 (three for any char, a surrogate pair's four for two),
   * far above any provider's ids and far below that limit.
   */
  static final int MAX_SETTLEMENT_ID_CHARS = 500;
  /**
   * A run of 13 or more digits, which a reason does not show, or one of the gateway's own ids, which
   * it shows whole: such a run is in about one payment id in 55, and one request id in 210.
   */
  private static final Pattern LONG_DIGIT_RUN_OR_OWN_ID = Pattern.compile(CardNumberScanner.OWN_ID_REGEX + "|[0-9]{13,}");
  private static final int MAX_RECORD_CHARS = 1 << 20;
  /**
   * The characters a file may have read again (see {@link #readRecord}) beyond {@link #REREAD_PER_CHAR} times those
   * it has. A quote left open is read again at most up to the next quote, about once; but lines that each open a
   * quoted field and keep the one before open ({@code x","""}) make every line's record run 1 MiB, each read again:
   * 150,000 times a 7-character line's cost (a 2 MB file was not through the pre-check in 30 s). Such a file is
   * refused instead.
   */
  private static final long REREAD_ALLOWANCE = 16L << 20;
  private static final int REREAD_PER_CHAR = 4;
  /**
   * The settled_at accepted: years 1 to 9999. PostgreSQL's timestamptz has no year 0 and COPY reads
   * neither a signed nor a five-digit year, so one placeholder such as 0000-01-01, -0001-01-01 or
   * +12345-01-01 would fail the whole run's COPY instead of being one malformed line.
   */
  static final Instant EARLIEST_SETTLED_AT = Instant.parse("0001-01-01T00:00:00Z");
  static final Instant LATEST_SETTLED_AT = Instant.parse("9999-12-31T23:59:59.999999Z");

  private final Reader in;
  /** The gateway's credentials, never shown in a reason ({@link #echo(String, int, CredentialScanner)}). */
  private final CredentialScanner credentials;
  /** The file's name, as every message about it names it. */
  private final String name;
  private final char delimiter;
  private final int width;
  private final int settlementId;
  private final int reference;
  private final int providerKey;
  private final int merchant;
  private final int amount;
  private final int currency;
  private final int status;
  private final int settledAt;
  /** The indexes above that the header has (the optional columns may be missing). */
  private final int[] columnsRead;
  private final Map<String, String> currencies = new HashMap<>();
  private final char[] buffer = new char[1 << 16];
  private int position;
  private int limit;
  /**
   * Text to read again before the rest of the stream: the lines after the first of a record that
   * could not be read (see {@link #readRecord}). At most one record's text, so at most about 1 MiB.
   */
  private String reread = "";
  private int rereadPosition;
  /** The characters read from the stream so far, and those put back to read again: see {@link #REREAD_ALLOWANCE}. */
  private long streamed;
  private long rereadTotal;
  /** The line of the next character: a line ends at LF, CRLF or a lone CR, inside quotes too. */
  private long nextLine = 1;
  /** The last character read was a CR: an LF now is the second half of that line break. */
  private boolean afterCr;
  private long recordLine;
  /** Of the record last read: the line breaks inside it (all within quoted fields). */
  private int recordBreaks;
  /** Of the record last read: the line where its first quoted field with a line break began, or 0. */
  private long spanLine;
  /** Of the record last read: why its lines cannot be one record (a quoted field never closes…), or null. */
  private String brokenReason;
  /** Of the record last read: the line break that ended it, or -1 (the end of the file, or of its quoted field's room). */
  private int recordEnd;

  /** One record: a row, or the reason it was skipped. */
  public sealed interface Result permits Valid, Skipped {}

  public record Valid(SettlementRow row) implements Result {}

  public record Skipped(MalformedRow malformed) implements Result {}

  private SettlementReader(Reader in, String name, Map<String, String> columnMap, CredentialScanner credentials) {
    this.in = in;
    this.credentials = credentials;
    this.name = name;
    Header parsed = readHeader(name);
    List<String> header = parsed.names();
    this.delimiter = parsed.delimiter();
    this.width = header.size();
    Set<String> read = new HashSet<>(); // the header names of the columns read, as this provider calls them
    for (String canonical : COLUMNS) {
      read.add(columnMap.getOrDefault(canonical, canonical));
    }
    Map<String, Integer> index = new HashMap<>();
    for (int i = 0; i < header.size(); i++) {
      if (index.putIfAbsent(header.get(i), i) != null && read.contains(header.get(i))) {
        // Which of the two holds the settlement's value would be a guess.
        throw new SettlementFileException(name + ": not a settlement CSV: column "
            + echo(header.get(i), 60, credentials) + " is named twice in the header");
      }
    }
    int[] at = new int[COLUMNS.size()];
    List<String> missing = new ArrayList<>();
    for (int c = 0; c < COLUMNS.size(); c++) {
      String canonical = COLUMNS.get(c);
      at[c] = index.getOrDefault(columnMap.getOrDefault(canonical, canonical), -1);
    }
    for (String required : List.of("settlement_id", "amount", "currency", "settled_at")) {
      if (at[COLUMNS.indexOf(required)] < 0) {
        missing.add(columnMap.getOrDefault(required, required));
      }
    }
    if (at[1] < 0 && at[2] < 0) {
      missing.add(columnMap.getOrDefault("provider_reference", "provider_reference") + " or "
          + columnMap.getOrDefault("provider_key", "provider_key"));
    }
    if (!missing.isEmpty()) {
      String found = String.join(", ", header);
      throw new SettlementFileException(name + ": not a settlement CSV: missing required column(s) "
          + String.join(", ", missing) + " (header has: " + echo(found, 200, credentials) + ")");
    }
    settlementId = at[0];
    reference = at[1];
    providerKey = at[2];
    merchant = at[3];
    amount = at[4];
    currency = at[5];
    status = at[6];
    settledAt = at[7];
    columnsRead = Arrays.stream(at).filter(column -> column >= 0).toArray();
  }

  /**
   * Opens a file and reads its header; {@link SettlementFileException} when it cannot be used. The
   * command line's: it knows no credential of a gateway, and its reasons show no card number only.
   */
  public static SettlementReader open(Path file, Map<String, String> columnMap) {
    InputStream in;
    try {
      if (Files.isDirectory(file)) {
        throw new SettlementFileException(file + ": is a directory, not a settlement CSV file");
      }
      in = Files.newInputStream(file);
    } catch (NoSuchFileException e) {
      throw new SettlementFileException(file + ": no such file");
    } catch (IOException e) {
      throw new SettlementFileException(file + ": cannot be read (" + e.getMessage() + ")");
    }
    return open(in, file.toString(), columnMap, CredentialScanner.NONE);
  }

  /**
   * Reads a stream (closed by {@link #close}); {@code name} names it in messages, which show none of
   * {@code credentials} (nor a card number) that a value holds.
   */
  public static SettlementReader open(InputStream stream, String name, Map<String, String> columnMap,
      CredentialScanner credentials) {
    // Bad bytes become U+FFFD so that one bad line is reported and the rest is still read.
    Reader reader = new InputStreamReader(stream, StandardCharsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE));
    try {
      return new SettlementReader(reader, name, columnMap, credentials);
    } catch (RuntimeException e) {
      try {
        reader.close();
      } catch (IOException ignored) {
        // the header error is the one to report
      }
      throw e;
    }
  }

  /** The next record, or null at the end of the file. */
  public Result next() {
    while (true) {
      CsvRecord record = readRecord(true);
      if (record == null) {
        return null;
      }
      if (record.broken() != null) {
        return skip(record.line(), record.broken());
      }
      List<String> fields = record.fields();
      if (fields.size() == 1 && fields.get(0).isBlank()) {
        continue;
      }
      return parse(fields);
    }
  }

  private Result parse(List<String> f) {
    long line = recordLine;
    if (f.size() != width) {
      return skip(line, "has " + f.size() + " fields where the header has " + width);
    }
    // Only the columns read: an extra column is ignored, bad bytes in it too (a name with an accent
    // in a Windows-1252 export must not cost the row).
    for (int column : columnsRead) {
      if (f.get(column).indexOf('\uFFFD') >= 0 || f.get(column).indexOf('\0') >= 0) {
        return skip(line, "is not valid UTF-8 text");
      }
    }
    String id = f.get(settlementId).trim();
    if (id.isEmpty()) {
      return skip(line, "settlement_id is empty");
    }
    if (id.length() > MAX_SETTLEMENT_ID_CHARS) {
      // Not echoed, even in part: no prefix of it says more than its length.
      return skip(line, "settlement_id is " + id.length() + " characters long, longer than the " + MAX_SETTLEMENT_ID_CHARS
          + " an identifier may be");
    }
    String ref = optional(f, reference);
    String key = optional(f, providerKey);
    String merchantId = optional(f, merchant);
    String amountText = f.get(amount).trim();
    long minor = parseAmount(amountText);
    if (minor <= 0) {
      return skip(line, "amount '" + echo(amountText) + "' is not a positive whole number of minor units up to " + MAX_AMOUNT);
    }
    String code = currencyCode(f.get(currency).trim());
    if (code == null) {
      return skip(line, "currency '" + echo(f.get(currency).trim()) + "' is not an ISO 4217 code");
    }
    String state = status < 0 ? "settled" : f.get(status).trim().toLowerCase(Locale.ROOT);
    if (!STATUSES.contains(state)) {
      return skip(line, "status '" + echo(state) + "' is not one of settled, refunded, chargeback");
    }
    String settledText = f.get(settledAt).trim();
    Instant at = parseInstant(settledText);
    if (at == null) {
      return skip(line, "settled_at '" + echo(f.get(settledAt).trim()) + "' is not an ISO-8601 date-time");
    }
    if (at.isBefore(EARLIEST_SETTLED_AT) || at.isAfter(LATEST_SETTLED_AT)) {
      return skip(line, "settled_at '" + echo(f.get(settledAt).trim()) + "' is not in the years 1 to 9999");
    }
    return new Valid(new SettlementRow(line, id, ref, ref == null ? null : normalizeReference(ref),
        key == null ? null : key.toLowerCase(Locale.ROOT), merchantId, minor, code, state, at, isDate(settledText)));
  }

  private static Skipped skip(long line, String reason) {
    return new Skipped(new MalformedRow(line, reason));
  }

  private static String optional(List<String> f, int index) {
    if (index < 0) {
      return null;
    }
    String s = f.get(index).trim();
    return s.isEmpty() ? null : s;
  }

  /** How far past what a reason shows {@link #echo(String, int, CredentialScanner)} looks for a credential. */
  private static final class Credentials {
    /** A key longer than this that the cut runs through would show its first characters: none is. */
    static final int MARGIN = 1024;
  }

  /** A value of the file as it may be shown in a reason, on standard error and in reports. */
  String echo(String value) {
    return echo(value, ECHO_CHARS, credentials);
  }

  /**
   * At most {@code max} characters of {@code value}, and none when a card number (a Luhn-valid run
   * of 13-19 digits, grouped as cards are printed or not) is shown or cut short by the limit: the
   * characters shown are scanned with the 19 after them, so a card the cut runs through is hidden too.
   * A run of 13 or more digits that the scanner does not take for a card (a card glued to other
   * digits, say) is not shown either: a reason needs no long number to be understood; but one inside
   * the gateway's own payment or request id is, the id whole. Nor is a value
   * that holds one of {@code credentials} ({@link CredentialScanner#find}: an API key in force, the
   * admin token) in its first {@code max} + 1,024 characters, so a key the cut runs through is hidden too.
   */
  static String echo(String value, int max, CredentialScanner credentials) {
    String scanned = value.length() > max + 19 ? value.substring(0, max + 19) : value;
    if (CardNumberScanner.containsCardNumber(scanned)) {
      return "<not shown: it looks like a card number>";
    }
    int looked = max + Credentials.MARGIN;
    CredentialScanner.Credential credential =
        credentials.find(value.length() > looked ? value.substring(0, looked) : value, null);
    if (credential != null) {
      return "<not shown: it holds " + credential.named() + ">";
    }
    // Matched in the whole value, so that an id is one only if the character after it, past the cut, allows it.
    Matcher runs = LONG_DIGIT_RUN_OR_OWN_ID.matcher(value).region(0, scanned.length()).useTransparentBounds(true);
    StringBuilder hidden = new StringBuilder(scanned.length());
    int shownUpTo = 0;
    while (runs.find()) {
      hidden.append(scanned, shownUpTo, runs.start())
          .append(Character.isDigit(scanned.charAt(runs.start())) ? "<long number>" : runs.group());
      shownUpTo = runs.end();
    }
    String shown = hidden.append(scanned, shownUpTo, scanned.length()).toString();
    return shown.length() > max || value.length() > scanned.length() ? shown.substring(0, Math.min(max, shown.length())) + "…" : shown;
  }

  /**
   * A reference without case or punctuation, so that {@code CH-SIM-12} and {@code ch_sim_12} agree.
   * Must equal the SQL function {@code idemgate.recon_ref_norm}: keep ASCII letters and digits, lower-case.
   */
  public static String normalizeReference(String reference) {
    StringBuilder out = new StringBuilder(reference.length());
    for (int i = 0; i < reference.length(); i++) {
      char c = reference.charAt(i);
      if (c >= 'A' && c <= 'Z') {
        out.append((char) (c + ('a' - 'A')));
      } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
        out.append(c);
      }
    }
    return out.length() == 0 ? null : out.toString();
  }

  private static long parseAmount(String s) {
    if (s.isEmpty() || s.length() > 18) {
      return -1;
    }
    long n = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < '0' || c > '9') {
        return -1;
      }
      n = n * 10 + (c - '0');
    }
    return n <= MAX_AMOUNT ? n : -1;
  }

  private String currencyCode(String s) {
    return currencies.computeIfAbsent(s, text -> {
      String upper = text.toUpperCase(Locale.ROOT);
      if (upper.length() != 3) {
        return null;
      }
      try {
        return Currency.getInstance(upper).getCurrencyCode();
      } catch (IllegalArgumentException e) {
        return null;
      }
    });
  }

  /** Whether {@link #parseInstant} reads {@code s} as a bare date (2026-11-30), which stands for that whole day. */
  static boolean isDate(String s) {
    return s.length() == 10;
  }

  /** ISO-8601 with an offset; a date-time without one, or a bare date (its start), is taken as UTC. */
  static Instant parseInstant(String s) {
    if (s.isEmpty()) {
      return null;
    }
    try {
      if (isDate(s)) {
        return LocalDate.parse(s).atStartOfDay(ZoneOffset.UTC).toInstant();
      }
      char last = s.charAt(s.length() - 1);
      if (last == 'Z' || last == 'z') {
        return Instant.parse(s.toUpperCase(Locale.ROOT).replace(' ', 'T'));
      }
      String t = s.replace(' ', 'T');
      int tee = t.indexOf('T');
      if (tee > 0 && (t.indexOf('+', tee) > 0 || t.indexOf('-', tee) > 0)) {
        return OffsetDateTime.parse(t).toInstant();
      }
      return LocalDateTime.parse(t).toInstant(ZoneOffset.UTC);
    } catch (DateTimeException e) {
      return null;
    }
  }

  private record Header(char delimiter, List<String> names) {}

  /** The delimiters a header may use; the header's own line is read before one is chosen. */
  private static final String HEADER_DELIMITERS = ",;\t|";

  private Header readHeader(String name) {
    String first;
    try {
      first = readRawRecord(HEADER_DELIMITERS);
    } catch (IOException e) {
      throw new SettlementFileException(name + ": cannot be read (" + e.getMessage() + ")");
    }
    if (first == null || first.isBlank()) {
      throw new SettlementFileException(name + ": is empty: expected a CSV header row naming "
          + String.join(", ", COLUMNS));
    }
    if (brokenReason != null) {
      throw new SettlementFileException(name + ": not a settlement CSV: a quote in its header is never closed");
    }
    if (first.charAt(0) == '\uFEFF') {
      first = first.substring(1);
    }
    if (first.indexOf('\uFFFD') >= 0 || first.indexOf('\0') >= 0) {
      throw new SettlementFileException(name + ": is not a CSV text file (its first line is not UTF-8 text)");
    }
    char best = ',';
    List<String> bestFields = null;
    for (char d : HEADER_DELIMITERS.toCharArray()) {
      List<String> fields = split(first, d);
      if (bestFields == null || fields.size() > bestFields.size()) {
        best = d;
        bestFields = fields;
      }
    }
    List<String> names = new ArrayList<>();
    for (String field : bestFields) {
      names.add(field.trim().toLowerCase(Locale.ROOT));
    }
    return new Header(best, names);
  }

  private static List<String> split(String record, char delimiter) {
    List<String> fields = new ArrayList<>();
    StringBuilder field = new StringBuilder();
    boolean quoted = false;
    for (int i = 0; i < record.length(); i++) {
      char c = record.charAt(i);
      if (quoted) {
        if (c == '"') {
          if (i + 1 < record.length() && record.charAt(i + 1) == '"') {
            field.append('"');
            i++;
          } else {
            quoted = false;
          }
        } else {
          field.append(c);
        }
      } else if (c == '"' && (i == 0 || record.charAt(i - 1) == delimiter)) {
        quoted = true; // only at the start of a field; elsewhere a quote is a character
      } else if (c == delimiter) {
        fields.add(field.toString());
        field.setLength(0);
      } else {
        field.append(c);
      }
    }
    fields.add(field.toString());
    return fields;
  }

  /**
   * The next record's text with quotes kept (line breaks inside quotes included), or null at the
   * end. A quote opens a quoted field only at the start of a field (or right after the quote that
   * closed one, for an escaped ""): a stray quote inside an unquoted field is a character, not the
   * start of a field that would swallow the lines after it. Outside quotes a record ends at LF, CRLF
   * or a lone CR, as in Python's csv module. When the file or {@link #MAX_RECORD_CHARS} ends inside
   * a quoted field, or a quoted field over several lines ends inside a field, the text read so far
   * comes back with {@link #brokenReason} saying so; a line longer than that limit fails the file.
   */
  private String readRawRecord(String delimiters) throws IOException {
    StringBuilder record = new StringBuilder(128);
    recordLine = nextLine;
    recordBreaks = 0;
    spanLine = 0;
    brokenReason = null;
    recordEnd = -1;
    boolean quoted = false;
    long quoteLine = 0; // the line where the quoted field now open (or just closed) began
    boolean justClosed = false; // the last character closed a quoted field: a quote now is an escaped ""
    boolean any = false;
    while (true) {
      int read = read();
      if (read < 0) {
        if (quoted) {
          brokenReason = opened(quoteLine) + " is never closed";
        }
        return any ? record.toString() : null;
      }
      char c = (char) read;
      boolean lf = c == '\n' && afterCr; // the LF of a CRLF, whose CR ended the line
      afterCr = c == '\r';
      if (lf) {
        if (quoted) {
          record.append(c);
        }
        continue; // outside quotes, the CR ended the record before it
      }
      any = true;
      if (justClosed && quoteLine < nextLine && c != '"' && c != '\n' && c != '\r' && delimiters.indexOf(c) < 0) {
        // A quoted field over several lines that ends inside a field: its quote was most likely left
        // open, and closed by the next quote in the file (a later line's opening quote).
        record.append(c);
        brokenReason = opened(quoteLine) + " runs on to line " + nextLine + ", where it ends inside a field (an unclosed quote?)";
        return record.toString();
      }
      if (c == '"') {
        boolean closes = quoted;
        if (quoted) {
          quoted = false;
        } else if (justClosed) {
          quoted = true; // an escaped "": the same field goes on
        } else if (record.isEmpty() || delimiters.indexOf(record.charAt(record.length() - 1)) >= 0) {
          quoted = true;
          quoteLine = nextLine;
        }
        justClosed = closes;
      } else {
        justClosed = false;
      }
      if (c == '\n' || c == '\r') {
        nextLine++;
        if (!quoted) {
          recordEnd = c;
          return record.toString();
        }
        recordBreaks++;
        if (spanLine == 0) {
          spanLine = quoteLine;
        }
      }
      if (record.length() >= MAX_RECORD_CHARS) {
        if (recordBreaks == 0) {
          throw new SettlementFileException(name + " line " + recordLine + ": a line longer than "
              + MAX_RECORD_CHARS + " characters");
        }
        // A quote left open would otherwise take every line after it into this record.
        record.append(c);
        brokenReason = quoted ? opened(quoteLine) + " is not closed within " + MAX_RECORD_CHARS + " characters"
            : opened(spanLine) + " makes a record longer than " + MAX_RECORD_CHARS + " characters";
        return record.toString();
      }
      record.append(c);
    }
  }

  private String opened(long quoteLine) {
    return "a quoted field opened " + (quoteLine == recordLine ? "here" : "on line " + quoteLine);
  }

  /** The next character: first those to read again, then the file's; -1 at its end. */
  private int read() throws IOException {
    if (rereadPosition < reread.length()) {
      return reread.charAt(rereadPosition++);
    }
    if (position == limit) {
      limit = in.read(buffer, 0, buffer.length);
      position = 0;
      if (limit <= 0) {
        limit = 0;
        return -1;
      }
      streamed += limit;
    }
    return buffer[position++];
  }

  /** A record: its fields (null when not asked for), or why its lines were not read as one record. */
  private record CsvRecord(long line, List<String> fields, String broken) {}

  /**
   * The next record, or null at the end. A record over several lines that cannot be one (its quoted
   * field never closes, or closes leaving the wrong number of fields: a quote left open and closed
   * by a later line's quote) is given back as broken at its first line, and reading goes on at its
   * second line as if the first had ended there: a quote left open costs its own line, never the
   * settlements after it. {@code fields} false splits only the records that span lines (for
   * {@link #checkRecords}, which must go through the file as {@link #next} does).
   */
  private CsvRecord readRecord(boolean fields) {
    String raw;
    try {
      raw = readRawRecord(String.valueOf(delimiter));
    } catch (IOException e) {
      throw new SettlementFileException(name + ": could not be read past line " + recordLine + " (" + e.getMessage() + ")");
    }
    if (raw == null) {
      return null;
    }
    String broken = brokenReason;
    List<String> split = null;
    if (broken == null && (fields || recordBreaks > 0)) {
      split = split(raw, delimiter);
      if (recordBreaks > 0 && split.size() != width) {
        broken = opened(spanLine) + " runs on to line " + (recordLine + recordBreaks) + ", leaving " + split.size()
            + " fields where the header has " + width + " (an unclosed quote?)";
      }
    }
    if (broken == null) {
      return new CsvRecord(recordLine, split, null);
    }
    readAgainAfterFirstLine(raw);
    return new CsvRecord(recordLine, null, broken);
  }

  /** Makes the lines of {@code raw} after its first the next ones read, numbered from the line after its first. */
  private void readAgainAfterFirstLine(String raw) {
    int cr = raw.indexOf('\r');
    int lf = raw.indexOf('\n');
    int lineBreak = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
    if (lineBreak < 0) {
      return; // one line, the file's last: nothing after it
    }
    int after = raw.startsWith("\r\n", lineBreak) ? lineBreak + 2 : lineBreak + 1;
    rereadTotal += raw.length() - after + 1 + reread.length() - rereadPosition;
    if (rereadTotal > REREAD_ALLOWANCE + REREAD_PER_CHAR * streamed) {
      throw new SettlementFileException(name + " line " + recordLine + ": quoted fields left open line after line, each "
          + "running on over many lines: too many to read the file line by line");
    }
    // A lone CR as the last character may be the first half of a CRLF whose LF is not read yet.
    afterCr = after == lineBreak + 1 && raw.charAt(lineBreak) == '\r';
    // The line break that ended the record is read again too: a CR of it may have its LF still unread.
    reread = raw.substring(after) + (recordEnd < 0 ? "" : String.valueOf((char) recordEnd)) + reread.substring(rereadPosition);
    rereadPosition = 0;
    nextLine = recordLine + 1;
  }

  /**
   * Reads a whole file for its records' bounds only, none parsed, and fails as {@link #next} would
   * on a line longer than {@link #MAX_RECORD_CHARS}: the one fault of a file's content that stops
   * a run half way instead of being a malformed line. Called before a run is stored, so that such
   * a file is refused with nothing stored rather than recorded as a FAILED run. Streams, one record
   * in memory at a time: 0.5-0.9 s for 100 MB (1,000,000 rows), where reconciling that file took
   * 3 minutes (measured on the 2-core machine, every row an orphan).
   */
  public static void checkRecords(InputStream stream, String name, Map<String, String> columnMap,
      CredentialScanner credentials) {
    try (SettlementReader scan = open(stream, name, columnMap, credentials)) {
      while (scan.readRecord(false) != null) {
        // each record's length is checked as it is read
      }
    }
  }

  @Override
  public void close() {
    try {
      in.close();
    } catch (IOException ignored) {
      // nothing was written; nothing to lose
    }
  }
}
