package dev.idemgate.reconciliation;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The CSV report's fields as a spreadsheet opens them (review h-review2). */
class ReportCsvFieldTest {
  @Test
  @DisplayName("a provider's value holding ';' then a formula is quoted: Excel set to the ';' list separator "
      + "(de-DE, fr-FR, ...) splits an unquoted field at ';' and runs the cell that starts with '='")
  void semicolonThenFormulaIsQuoted() {
    String reference = "ch_1;=HYPERLINK(1)"; // a settlement file's provider_reference or settlement_id, as read
    String field = ReportWriter.csvField(reference);
    assertThat(field).as("csvField(%s)", reference).startsWith("\"").endsWith("\"");
  }
}
