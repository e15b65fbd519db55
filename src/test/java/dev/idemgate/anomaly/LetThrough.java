package dev.idemgate.anomaly;

import java.util.Map;

/** A twin that goes on to the claim, and how the admin view names it: the cases the twin ITs run through. */
enum LetThrough {
  /** Policy flag: every twin is charged, and counted against its client. */
  FLAGGED("flag", Map.of(), "flagged"),
  /** Policy reject: a declared repeat is charged, and counted as intended. */
  DECLARED_REPEAT("reject", Map.of(TwinDetector.REPEAT_HEADER, "intended"), "intended");

  final String policy;
  final Map<String, String> headers;
  final String outcome;

  LetThrough(String policy, Map<String, String> headers, String outcome) {
    this.policy = policy;
    this.headers = headers;
    this.outcome = outcome;
  }
}
