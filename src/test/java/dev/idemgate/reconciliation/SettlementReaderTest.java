package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.auth.MerchantKeys;
import dev.idemgate.config.ConfigLoader;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class SettlementReaderTest {

  private static List<SettlementReader.Result> read(String csv, Map<String, String> columnMap) {
    List<SettlementReader.Result> results = new ArrayList<>();
    try (SettlementReader reader = SettlementReader.open(
        new ByteArrayInputStream(csv.getBytes(StandardCharsets.UTF_8)), "test.csv", columnMap, CredentialScanner.NONE)) {
      for (SettlementReader.Result r = reader.next(); r != null; r = reader.next()) {
        results.add(r);
      }
    }
    return results;
  }

  private static SettlementRow row(SettlementReader.Result result) {
    assertThat(result).isInstanceOf(SettlementReader.Valid.class);
    return ((SettlementReader.Valid) result).row();
  }

  @Test
  @DisplayName("columns may come in any order and extra columns are ignored")
  void anyOrderExtraColumns() {
    List<SettlementReader.Result> rows = read("""
        fee,settled_at,Currency,amount,provider_reference,settlement_id,note,merchant_id
        12,2026-01-02T10:00:00Z,eur,1999,ch_1,s1,hello,m1
        """, Map.of());
    SettlementRow r = row(rows.get(0));
    assertThat(r.settlementId()).isEqualTo("s1");
    assertThat(r.amount()).isEqualTo(1999);
    assertThat(r.currency()).isEqualTo("EUR");
    assertThat(r.status()).isEqualTo("settled");
    assertThat(r.merchantId()).isEqualTo("m1");
    assertThat(r.providerKey()).isNull();
    assertThat(r.referenceKey()).isEqualTo("ch1");
    assertThat(r.settledAt()).isEqualTo(Instant.parse("2026-01-02T10:00:00Z"));
    assertThat(r.line()).isEqualTo(2);
  }

  @Test
  @DisplayName("a settled_at outside the years 1 to 9999 (year 0, a signed or five-digit year) is a malformed line, "
      + "not a value PostgreSQL's COPY would refuse for the whole file")
  void settledAtWithinYearsPostgresAccepts() {
    List<SettlementReader.Result> rows = read("""
        settlement_id,provider_reference,amount,currency,settled_at
        s1,ch_1,100,EUR,0000-01-01
        s2,ch_2,100,EUR,-0001-01-01T00:00:00Z
        s3,ch_3,100,EUR,+12345-01-01T00:00:00Z
        s4,ch_4,100,EUR,0001-01-01T00:30:00+01:00
        s5,ch_5,100,EUR,0001-01-01
        s6,ch_6,100,EUR,9999-12-31T23:59:59Z
        """, Map.of());
    for (int i = 0; i < 4; i++) {
      assertThat(rows.get(i)).as("line " + (i + 2)).isInstanceOf(SettlementReader.Skipped.class);
      assertThat(((SettlementReader.Skipped) rows.get(i)).malformed().reason()).contains("settled_at");
    }
    assertThat(row(rows.get(4)).settledAt()).isEqualTo(Instant.parse("0001-01-01T00:00:00Z"));
    assertThat(row(rows.get(5)).settledAt()).isEqualTo(Instant.parse("9999-12-31T23:59:59Z"));
    // A bare date stands for its whole day (the file's period ends with it); a date-time for its instant.
    assertThat(row(rows.get(4)).wholeDay()).isTrue();
    assertThat(row(rows.get(5)).wholeDay()).isFalse();
  }

  @Test
  @DisplayName("amounts are capped as POST /pay caps them, so a card number in the amount column is a malformed line; "
      + "a reason never shows a card number, nor more than a short prefix of a value")
  void amountCapAndShortCardFreeReasons() {
    String card = "4242424242424242";
    String huge = "x".repeat(100_000);
    List<SettlementReader.Result> rows = read("settlement_id,provider_reference,amount,currency,status,settled_at\n"
        + "s1,ch_1,1000000000000,EUR,settled,2026-01-02\n"
        + "s2,ch_2,1000000000001,EUR,settled,2026-01-02\n"
        + "s3,ch_3," + card + ",EUR,settled,2026-01-02\n"
        + "s4,ch_4,100,EUR,4242 4242 4242 4242,2026-01-02\n"
        + "s5,ch_5,100,EUR,settled,20260102" + card + "\n"
        + "s6,ch_6,100,EUR," + huge + ",2026-01-02\n"
        + "s7,ch_7,100,EUR,settled,2026-01-02T10:00:00.000000000000000000000000" + card + "Z\n", Map.of());
    assertThat(row(rows.get(0)).amount()).isEqualTo(1_000_000_000_000L);
    for (int i = 1; i < rows.size(); i++) {
      assertThat(rows.get(i)).as("line " + (i + 2)).isInstanceOf(SettlementReader.Skipped.class);
      String reason = ((SettlementReader.Skipped) rows.get(i)).malformed().reason();
      assertThat(reason).as("line " + (i + 2)).doesNotContain(card).doesNotContain("4242 4242 4242 4242").hasSizeLessThan(200);
      assertThat(dev.idemgate.payment.CardNumberScanner.containsCardNumber(reason)).as(reason).isFalse();
    }
  }

  @Test
  @DisplayName("a reason shows the gateway's own ids whole, though a payment or request id may hold a run of 13 or "
      + "more digits (a column shifted by one names a payment where the status should be); such a run anywhere else "
      + "is still not shown")
  void ownIdsAreShownWhole() {
    String paymentId = "pay_0123456789012345abcdef0123456789";
    String requestId = "req_1234567890123456";
    String csv = "settlement_id,provider_reference,amount,currency,status,settled_at\n"
        + "s1,ch_1,100,EUR," + paymentId + ",2026-01-02\n"
        + "s2,ch_2,100,EUR,settled " + requestId + ",2026-01-02\n"
        + "s3,ch_3,100,EUR,xpay_0123456789012345abcdef0123456789,2026-01-02\n"
        // Glued to a letter past the characters scanned (the 40 shown and 19 more), so no id either.
        + "s4,ch_4,100,EUR," + "x".repeat(SettlementReader.ECHO_CHARS + 19 - 37) + " " + paymentId + "Z,2026-01-02\n";
    List<SettlementReader.Result> rows = read(csv, Map.of());
    assertThat(rows).hasSize(4);
    assertThat(((SettlementReader.Skipped) rows.get(3)).malformed().reason()).as("an id glued to a letter past the scan")
        .contains("pay_<long").doesNotContain("0123456789012");
    assertThat(((SettlementReader.Skipped) rows.get(0)).malformed().reason()).contains("status '" + paymentId + "'");
    assertThat(((SettlementReader.Skipped) rows.get(1)).malformed().reason()).contains("status 'settled " + requestId + "'");
    assertThat(((SettlementReader.Skipped) rows.get(2)).malformed().reason()).as("no id: glued to a letter before it")
        .contains("status 'xpay_<long number>abcdef0123456789'");
  }

  @Test
  @DisplayName("a reason never shows an API key in force or the admin token, nor the first characters of one the cut "
      + "of a long value runs through; a header naming one is not echoed in the file's refusal")
  void credentialFreeReasons() {
    String key = "sk_live_" + "Qm9vZmJhcmJhenF1eHF1dXhjb3JnZWdyYXVsdA";
    String admin = "0123456789abcdef0123456789abcdef";
    CredentialScanner credentials = new CredentialScanner(
        MerchantKeys.load(ConfigLoader.load(Optional.empty(),
            Map.of("IDEMGATE_API_KEYS", "demo=" + key))), Optional.of(admin));
    String straddling = "x".repeat(SettlementReader.ECHO_CHARS - 10) + " " + key;
    String csv = "settlement_id,provider_reference,amount,currency,status,settled_at\n"
        + "s1,ch_1," + key + ",EUR,settled,2026-01-02\n"
        + "s2,ch_2,100,\"key=" + key + ";\",settled,2026-01-02\n"
        + "s3,ch_3,100,EUR,token " + admin + ",2026-01-02\n"
        + "s4,ch_4,100,EUR,settled," + straddling + "\n";
    List<SettlementReader.Result> rows = new ArrayList<>();
    try (SettlementReader reader = SettlementReader.open(
        new ByteArrayInputStream(csv.getBytes(StandardCharsets.UTF_8)), "keys.csv", Map.of(), credentials)) {
      for (SettlementReader.Result r = reader.next(); r != null; r = reader.next()) {
        rows.add(r);
      }
    }
    assertThat(rows).hasSize(4);
    for (SettlementReader.Result result : rows) {
      String reason = ((SettlementReader.Skipped) result).malformed().reason();
      assertThat(reason).doesNotContain(key.substring(0, 9), admin.substring(0, 9)).contains("<not shown: it holds ");
    }
    assertThatThrownBy(() -> SettlementReader.open(new ByteArrayInputStream(("settlement_id," + key + "\n")
        .getBytes(StandardCharsets.UTF_8)), "header.csv", Map.of(), credentials).close())
        .isInstanceOf(SettlementFileException.class)
        .hasMessageContaining("missing required column(s)").hasMessageNotContaining(key.substring(0, 9));
  }

  @Test
  @DisplayName("a settlement_id of up to 500 characters is read as given; a longer one makes its line malformed, the "
      + "reason giving its length and none of it")
  void settlementIdLength() {
    String longest = "s" + "4".repeat(SettlementReader.MAX_SETTLEMENT_ID_CHARS - 1);
    String tooLong = "t" + "4242424242424242".repeat(40);
    List<SettlementReader.Result> rows = read("settlement_id,provider_reference,amount,currency,settled_at\n"
        + longest + ",ch_1,100,EUR,2026-01-02\n"
        + tooLong + ",ch_2,100,EUR,2026-01-02\n", Map.of());
    assertThat(row(rows.get(0)).settlementId()).isEqualTo(longest);
    assertThat(rows.get(1)).isInstanceOf(SettlementReader.Skipped.class);
    String reason = ((SettlementReader.Skipped) rows.get(1)).malformed().reason();
    assertThat(reason).contains("settlement_id is " + tooLong.length() + " characters long").doesNotContain("4242");
  }

  @Test
  @DisplayName("bad bytes in an extra column leave the row alone; in a column that is read they make the row malformed")
  void badBytesOnlyCountInColumnsRead() {
    byte[] csv = ("settlement_id,provider_reference,amount,currency,settled_at,customer\n"
        + "s1,ch_1,100,EUR,2026-01-02,Zo\u00eb\n"
        + "s2,ch_\u00eb,200,EUR,2026-01-02,x\n").getBytes(StandardCharsets.ISO_8859_1); // a Windows-1252 export
    List<SettlementReader.Result> rows = new ArrayList<>();
    try (SettlementReader reader = SettlementReader.open(new ByteArrayInputStream(csv), "latin1.csv", Map.of(),
        CredentialScanner.NONE)) {
      for (SettlementReader.Result r = reader.next(); r != null; r = reader.next()) {
        rows.add(r);
      }
    }
    assertThat(row(rows.get(0)).settlementId()).isEqualTo("s1");
    assertThat(rows.get(1)).isInstanceOf(SettlementReader.Skipped.class);
    assertThat(((SettlementReader.Skipped) rows.get(1)).malformed().reason()).contains("not valid UTF-8");
  }

  @Test
  @DisplayName("a stray quote inside an unquoted field is a character: the lines after it are read as rows of their own")
  void strayQuote() {
    List<SettlementReader.Result> rows = read("""
        settlement_id,provider_reference,amount,currency,settled_at,note
        s1,ch_1,100,EUR,2026-01-02,the customer's "gift
        s2,ch_2,200,EUR,2026-01-02,
        s3,ch_3"x,300,EUR,2026-01-02,"quoted, still"
        """, Map.of());
    assertThat(rows).hasSize(3);
    assertThat(row(rows.get(0)).settlementId()).isEqualTo("s1");
    assertThat(row(rows.get(1)).settlementId()).isEqualTo("s2");
    assertThat(row(rows.get(1)).line()).isEqualTo(3);
    assertThat(row(rows.get(2)).providerReference()).isEqualTo("ch_3\"x");
    assertThat(row(rows.get(2)).line()).isEqualTo(4);
  }

  @Test
  @DisplayName("quoted fields keep delimiters, quotes and line breaks; line numbers count physical lines")
  void quoting() {
    List<SettlementReader.Result> rows = read("\uFEFFsettlement_id,provider_reference,amount,currency,settled_at\r\n"
        + "\"s,1\",\"ch \"\"x\"\"\n2\",100,EUR,2026-01-02\r\n"
        + "s2,ch_3,200,USD,2026-01-02T10:00:00+02:00\r\n", Map.of());
    assertThat(row(rows.get(0)).settlementId()).isEqualTo("s,1");
    assertThat(row(rows.get(0)).providerReference()).isEqualTo("ch \"x\"\n2");
    assertThat(row(rows.get(0)).line()).isEqualTo(2);
    assertThat(row(rows.get(1)).line()).isEqualTo(4);
    assertThat(row(rows.get(1)).settledAt()).isEqualTo(Instant.parse("2026-01-02T08:00:00Z"));
  }

  @Test
  @DisplayName("a lone CR ends a line as LF and CRLF do (old Mac and spreadsheet exports); line numbers count those "
      + "lines, and a CR inside a quoted field stays in its value")
  void crOnlyLineEndings() {
    List<SettlementReader.Result> rows = read("settlement_id,provider_reference,amount,currency,settled_at,note\r"
        + "s1,ch_1,100,EUR,2026-01-02,\r"
        + "s2,\"ch\r2\",200,EUR,2026-01-02,\r"
        + "s3,ch_3,12.50,EUR,2026-01-02,\r"
        + "\r"
        + "s4,ch_4,400,EUR,2026-01-02,\r\n" // a CRLF and an LF in the same file still end one line each
        + "s5,ch_5,500,EUR,2026-01-02,\n"
        + "s6,ch_6,600,EUR,2026-01-02,", Map.of());
    assertThat(rows).hasSize(6);
    assertThat(row(rows.get(0)).settlementId()).isEqualTo("s1");
    assertThat(row(rows.get(0)).line()).isEqualTo(2);
    assertThat(row(rows.get(1)).settlementId()).isEqualTo("s2");
    assertThat(row(rows.get(1)).line()).isEqualTo(3);
    assertThat(row(rows.get(1)).providerReference()).isEqualTo("ch\r2");
    assertThat(rows.get(2)).isInstanceOf(SettlementReader.Skipped.class);
    assertThat(((SettlementReader.Skipped) rows.get(2)).malformed().line()).isEqualTo(5);
    assertThat(((SettlementReader.Skipped) rows.get(2)).malformed().reason()).contains("amount '12.50'");
    assertThat(row(rows.get(3)).line()).isEqualTo(7);
    assertThat(row(rows.get(4)).line()).isEqualTo(8);
    assertThat(row(rows.get(5)).line()).isEqualTo(9);
    assertThat(row(rows.get(5)).amount()).isEqualTo(600);
  }

  @Test
  @DisplayName("a CR-only file larger than 1 MiB passes checkRecords and is read row by row")
  void crOnlyFileLargerThanTheRecordLimit() {
    StringBuilder csv = new StringBuilder("settlement_id,provider_reference,amount,currency,settled_at\r");
    for (int i = 0; i < 40_000; i++) {
      csv.append("s").append(i).append(",ch_").append(i).append(",100,EUR,2026-01-02\r");
    }
    assertThat(csv.length()).isGreaterThan(1 << 20);
    SettlementReader.checkRecords(new ByteArrayInputStream(csv.toString().getBytes(StandardCharsets.UTF_8)), "mac.csv", Map.of(),
        CredentialScanner.NONE);
    List<SettlementReader.Result> rows = read(csv.toString(), Map.of());
    assertThat(rows).hasSize(40_000).allMatch(r -> r instanceof SettlementReader.Valid);
    assertThat(row(rows.get(39_999)).line()).isEqualTo(40_001);
  }

  @Test
  @DisplayName("a quoted field never closed before the end of the file makes only its own line malformed; the lines "
      + "after it are read as rows")
  void unclosedQuoteAtEndOfFile() {
    List<SettlementReader.Result> rows = read("""
        settlement_id,provider_reference,amount,currency,settled_at,note
        s1,ch_1,100,EUR,2026-01-02,
        s2,ch_2,200,EUR,2026-01-02,"Best deal
        s3,ch_3,300,EUR,2026-01-02,
        s4,ch_4,400,EUR,2026-01-02,
        """, Map.of());
    assertThat(rows).hasSize(4);
    assertThat(row(rows.get(0)).line()).isEqualTo(2);
    assertThat(rows.get(1)).isInstanceOf(SettlementReader.Skipped.class);
    MalformedRow unclosed = ((SettlementReader.Skipped) rows.get(1)).malformed();
    assertThat(unclosed.line()).isEqualTo(3);
    assertThat(unclosed.reason()).isEqualTo("a quoted field opened here is never closed");
    assertThat(row(rows.get(2)).settlementId()).isEqualTo("s3");
    assertThat(row(rows.get(2)).line()).isEqualTo(4);
    assertThat(row(rows.get(3)).settlementId()).isEqualTo("s4");
    assertThat(read("settlement_id,provider_reference,amount,currency,settled_at\ns1,\"ch_1,100,EUR,2026-01-02", Map.of()))
        .as("on the last line").containsExactly(new SettlementReader.Skipped(new MalformedRow(2,
            "a quoted field opened here is never closed")));
  }

  @Test
  @DisplayName("in a file that quotes every field, an unclosed quote is closed by the next line's first quote: that "
      + "line is malformed alone and the next one is read as its own row, not merged into it")
  void unclosedQuoteClosedByALaterLine() {
    List<SettlementReader.Result> rows = read("""
        "settlement_id","provider_reference","amount","currency","settled_at","note"
        "s1","ch_1","100","EUR","2026-01-02",""
        "s2","ch_2","200","EUR","2026-01-02","Best deal
        "s3","ch_3","300","EUR","2026-01-02",""
        "s4","ch_4","400","EUR","2026-01-02","two
        lines"
        """, Map.of());
    assertThat(rows).hasSize(4);
    assertThat(row(rows.get(0)).settlementId()).isEqualTo("s1");
    assertThat(rows.get(1)).isInstanceOf(SettlementReader.Skipped.class);
    assertThat(((SettlementReader.Skipped) rows.get(1)).malformed().line()).isEqualTo(3);
    assertThat(((SettlementReader.Skipped) rows.get(1)).malformed().reason()).contains("line 4");
    assertThat(row(rows.get(2)).settlementId()).isEqualTo("s3");
    assertThat(row(rows.get(2)).line()).isEqualTo(4);
    assertThat(row(rows.get(3)).settlementId()).isEqualTo("s4");
    assertThat(row(rows.get(3)).line()).isEqualTo(5);
  }

  @Test
  @DisplayName("a quote left open in a column that is quoted on every line is closed by the next line's opening quote, "
      + "leaving the right number of fields: that line is malformed alone, and the next is read as its own row")
  void unclosedQuoteClosedInTheSameColumn() {
    List<SettlementReader.Result> rows = read("""
        settlement_id,provider_reference,amount,currency,settled_at,note
        s1,ch_1,100,EUR,2026-01-02,"Blue widget"
        s2,ch_2,200,EUR,2026-01-02,"Best deal
        s3,ch_3,300,EUR,2026-01-02,"Red widget"
        s4,ch_4,400,EUR,2026-01-02,"two
        lines"
        """, Map.of());
    assertThat(rows).hasSize(4);
    assertThat(row(rows.get(0)).settlementId()).isEqualTo("s1");
    assertThat(((SettlementReader.Skipped) rows.get(1)).malformed()).isEqualTo(new MalformedRow(3,
        "a quoted field opened here runs on to line 4, where it ends inside a field (an unclosed quote?)"));
    assertThat(row(rows.get(2)).settlementId()).isEqualTo("s3");
    assertThat(row(rows.get(2)).line()).isEqualTo(4);
    assertThat(row(rows.get(3)).settlementId()).isEqualTo("s4");
  }

  @Test
  @DisplayName("a quoted field not closed within 1 MiB costs its own line only: checkRecords lets the file through and "
      + "every row after that line is read")
  void unclosedQuoteRunningPastTheRecordLimit() {
    StringBuilder csv = new StringBuilder("settlement_id,provider_reference,amount,currency,settled_at\n"
        + "s0,\"ch_0,100,EUR,2026-01-02\n");
    for (int i = 1; i <= 40_000; i++) {
      csv.append("s").append(i).append(",ch_").append(i).append(",100,EUR,2026-01-02\n");
    }
    csv.append("s_last,\"ch_last\",100,EUR,2026-01-02\n"); // a quote that, read from line 2, closes the one opened there
    assertThat(csv.length()).isGreaterThan(1 << 20);
    SettlementReader.checkRecords(new ByteArrayInputStream(csv.toString().getBytes(StandardCharsets.UTF_8)), "q.csv", Map.of(),
        CredentialScanner.NONE);
    List<SettlementReader.Result> rows = read(csv.toString(), Map.of());
    assertThat(rows).hasSize(40_002);
    assertThat(((SettlementReader.Skipped) rows.get(0)).malformed())
        .isEqualTo(new MalformedRow(2, "a quoted field opened here is not closed within 1048576 characters"));
    assertThat(rows.subList(1, rows.size())).allMatch(r -> r instanceof SettlementReader.Valid);
    assertThat(row(rows.get(1)).line()).isEqualTo(3);
    assertThat(row(rows.get(40_001)).providerReference()).isEqualTo("ch_last");
  }

  @Test
  @DisplayName("quotes left open line after line, each keeping a quoted field open for 1 MiB, refuse the file in "
      + "bounded time: each line's record ran 1 MiB and was read again (a 2 MB file was not through checkRecords in 30 s)")
  void quotesLeftOpenOnEveryLineAreNotReadAgainWithoutEnd() {
    // Read from its own start a line opens a quoted field (at ,") and leaves it open (the escaped "" of """); read
    // inside a quoted field it closes it (x"), opens another (,") and leaves that one open: every line starts a
    // record that runs 1 MiB.
    String csv = "settlement_id,provider_reference,amount,currency,settled_at\n" + "x\",\"\"\"\n".repeat(300_000);
    assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
      assertThatThrownBy(() -> SettlementReader.checkRecords(new ByteArrayInputStream(csv.getBytes(StandardCharsets.UTF_8)),
          "hostile.csv", Map.of(), CredentialScanner.NONE))
          .isInstanceOf(SettlementFileException.class)
          .hasMessageStartingWith("hostile.csv line ")
          .hasMessageEndingWith(": quoted fields left open line after line, each running on over many lines: too many "
              + "to read the file line by line");
      assertThatThrownBy(() -> read(csv, Map.of())).isInstanceOf(SettlementFileException.class)
          .hasMessageEndingWith("too many to read the file line by line");
    });
  }

  @Test
  @DisplayName("a semicolon-separated file is read too")
  void semicolons() {
    List<SettlementReader.Result> rows = read("settlement_id;provider_key;amount;currency;settled_at;status\n"
        + "s1;ABCDEF;100;JPY;2026-01-02T00:00:00;Refunded\n", Map.of());
    assertThat(row(rows.get(0)).providerKey()).isEqualTo("abcdef");
    assertThat(row(rows.get(0)).status()).isEqualTo("refunded");
  }

  @Test
  @DisplayName("a provider's column names are read through its column map")
  void columnMap() {
    Map<String, String> acme = Map.of("settlement_id", "txn_id", "provider_reference", "charge_id",
        "amount", "amount_minor", "currency", "ccy", "settled_at", "value_date");
    SettlementRow r = row(read("txn_id,charge_id,amount_minor,ccy,value_date\nt1,ch_9,500,GBP,2026-03-01\n", acme).get(0));
    assertThat(r.settlementId()).isEqualTo("t1");
    assertThat(r.providerReference()).isEqualTo("ch_9");
  }

  @Test
  @DisplayName("malformed rows come back with their line number and reason, and reading goes on")
  void malformedRows() {
    List<SettlementReader.Result> rows = read("""
        settlement_id,provider_reference,amount,currency,status,settled_at
        s1,ch_1,12.50,EUR,settled,2026-01-02
        s2,ch_2,100,EURO,settled,2026-01-02
        s3,ch_3,100,EUR,pending,2026-01-02
        s4,ch_4,100,EUR,settled,yesterday
        s5,ch_5,100,EUR,settled
        ,ch_6,100,EUR,settled,2026-01-02

        s7,ch_7,100,EUR,settled,2026-01-02
        """, Map.of());
    assertThat(rows).hasSize(7);
    assertThat(rows.subList(0, 6)).allMatch(r -> r instanceof SettlementReader.Skipped);
    List<MalformedRow> bad = rows.subList(0, 6).stream().map(r -> ((SettlementReader.Skipped) r).malformed()).toList();
    assertThat(bad).extracting(MalformedRow::line).containsExactly(2L, 3L, 4L, 5L, 6L, 7L);
    assertThat(bad.get(0).reason()).contains("amount '12.50'");
    assertThat(bad.get(1).reason()).contains("currency 'EURO'");
    assertThat(bad.get(2).reason()).contains("status 'pending'");
    assertThat(bad.get(3).reason()).contains("settled_at 'yesterday'");
    assertThat(bad.get(4).reason()).contains("5 fields where the header has 6");
    assertThat(bad.get(5).reason()).contains("settlement_id is empty");
    assertThat(row(rows.get(6)).line()).isEqualTo(9);
  }

  @Test
  @DisplayName("a file without the required columns is refused with one line naming them")
  void missingColumns() {
    assertThatThrownBy(() -> read("settlement_id,provider_reference,currency\ns1,ch_1,EUR\n", Map.of()))
        .isInstanceOf(SettlementFileException.class)
        .hasMessageContaining("missing required column(s) amount, settled_at")
        .hasMessageContaining("header has: settlement_id, provider_reference, currency")
        .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
    assertThatThrownBy(() -> read("settlement_id,amount,currency,settled_at\n", Map.of()))
        .hasMessageContaining("provider_reference or provider_key");
  }

  @Test
  @DisplayName("a column the reader uses, named twice in the header, is refused; a repeated column it ignores is not")
  void columnNamedTwice() {
    assertThatThrownBy(() -> read("settlement_id,provider_reference,amount,currency,settled_at,amount\ns1,ch_1,100,EUR,2026-11-01T00:00:00Z,999\n",
        Map.of()))
        .isInstanceOf(SettlementFileException.class).hasMessageContaining("column amount is named twice");
    assertThatThrownBy(() -> read("id,provider_reference,amount,currency,settled_at,id\ns1,ch_1,100,EUR,2026-11-01T00:00:00Z,s2\n",
        Map.of("settlement_id", "id")))
        .as("under a provider's own name").hasMessageContaining("column id is named twice");
    assertThat(read("settlement_id,provider_reference,amount,currency,settled_at,note,note\ns1,ch_1,100,EUR,2026-11-01T00:00:00Z,a,b\n",
        Map.of())).hasSize(1);
  }

  @Test
  @DisplayName("an empty, binary or JSON file is not CSV")
  void notCsv() {
    assertThatThrownBy(() -> read("", Map.of())).isInstanceOf(SettlementFileException.class).hasMessageContaining("is empty");
    byte[] png = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, (byte) 0xff, (byte) 0xfe};
    assertThatThrownBy(() -> SettlementReader.open(new ByteArrayInputStream(png), "x.png", Map.of(), CredentialScanner.NONE))
        .isInstanceOf(SettlementFileException.class).hasMessageContaining("not a CSV text file");
    assertThatThrownBy(() -> read("{\"settlements\": [1, 2]}\n", Map.of()))
        .isInstanceOf(SettlementFileException.class).hasMessageContaining("not a settlement CSV");
  }

  @Test
  @DisplayName("a line longer than 1 MiB is refused with the file's name and its line")
  void overlongRecordNamesTheFile() {
    String csv = "settlement_id,provider_reference,amount,currency,settled_at\n"
        + "s1,\"" + "x".repeat((1 << 20) + 10) + "\n";
    assertThatThrownBy(() -> read(csv, Map.of())).isInstanceOf(SettlementFileException.class)
        .hasMessage("test.csv line 2: a line longer than 1048576 characters");
  }

  @Test
  @DisplayName("checkRecords reads a whole file and refuses its first line longer than 1 MiB, wherever it is; a good file passes")
  void checkRecordsFindsTheOverlongRecord() {
    String header = "settlement_id,provider_reference,amount,currency,settled_at\n";
    String good = header + "s1,ch_1,100,EUR,2026-01-01\n".repeat(1_000) + "s2,\"quoted,\nover two lines\",1,EUR,2026-01-01\n";
    SettlementReader.checkRecords(new ByteArrayInputStream(good.getBytes(StandardCharsets.UTF_8)), "good.csv", Map.of(),
        CredentialScanner.NONE);
    String bad = good + "s3,\"" + "x".repeat((1 << 20) + 10) + "\n";
    assertThatThrownBy(() -> SettlementReader.checkRecords(new ByteArrayInputStream(bad.getBytes(StandardCharsets.UTF_8)),
        "bad.csv", Map.of(), CredentialScanner.NONE))
        .isInstanceOf(SettlementFileException.class)
        .hasMessage("bad.csv line 1004: a line longer than 1048576 characters");
  }

  @Test
  @DisplayName("a file that cannot be read half way is refused with its name and the line reached")
  void unreadableHalfWayNamesTheFile() {
    byte[] header = "settlement_id,provider_reference,amount,currency,settled_at\n".getBytes(StandardCharsets.UTF_8);
    java.io.InputStream failing = new java.io.SequenceInputStream(new ByteArrayInputStream(header), new java.io.InputStream() {
      @Override
      public int read() throws java.io.IOException {
        throw new java.io.IOException("Input/output error");
      }
    });
    assertThatThrownBy(() -> {
      try (SettlementReader reader = SettlementReader.open(failing, "disk.csv", Map.of(), CredentialScanner.NONE)) {
        reader.next();
      }
    }).isInstanceOf(SettlementFileException.class).hasMessageStartingWith("disk.csv: could not be read past line 2");
  }

  @Test
  @DisplayName("references are compared without case or punctuation")
  void referenceKey() {
    assertThat(SettlementReader.normalizeReference("CH-SIM-12")).isEqualTo(SettlementReader.normalizeReference("ch_sim_12"));
    assertThat(SettlementReader.normalizeReference(" -_ ")).isNull();
  }
}
