package dev.idemgate.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class ReportCommandTest {
  @Test
  @DisplayName("a verdict is decided on the ratio itself, not on its two-decimal rounding")
  void verdictIsNotRounded() {
    assertEquals("NOT met", new ReportCommand.Ratio("replays", 0.5991, ">= 0.6", "").verdict());
    assertEquals("met", new ReportCommand.Ratio("replays", 0.6, ">= 0.6", "").verdict());
    assertEquals("NOT met", new ReportCommand.Ratio("storm", 1.004, "<= 1.0", "").verdict());
    assertEquals("", new ReportCommand.Ratio("informative", 3.0, "", "").verdict());
  }
}
