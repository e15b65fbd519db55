package dev.idemgate.recovery;

import java.util.Locale;

/** Why a payment's key was released; stored with the payment in {@code released_payments.reason}. */
enum ReleaseReason {
  /** Recovery asked the acquirer once a late charge could no longer land, and it had never seen the charge. */
  PROVIDER_NEVER_SAW_IT("the provider never saw it"),
  /** An operator's verdict ({@code POST /admin/pending/{id}/resolve}): the acquirer never charged it. */
  OPERATOR_NOT_CHARGED("an operator says the acquirer never charged it");

  private final String description;

  ReleaseReason(String description) {
    this.description = description;
  }

  /** The value of the {@code reason} column. */
  String column() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** For the log line. */
  String description() {
    return description;
  }
}
