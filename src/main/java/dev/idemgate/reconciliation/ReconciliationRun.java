package dev.idemgate.reconciliation;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;

/** A stored run: what was reconciled, its state and, once COMPLETED, its summary. */
public record ReconciliationRun(
    String id,
    String source,
    String status,
    String settlementFile,
    String provider,
    String merchantPrefix,
    Instant windowFrom,
    Instant windowTo,
    long settlementLagSeconds,
    Instant asOf,
    JsonObject summary,
    JsonArray malformedRows,
    String error,
    Instant startedAt,
    Instant finishedAt) {

  public JsonObject toJson() {
    return new JsonObject()
        .put("id", id)
        .put("status", status)
        .put("source", source)
        .put("settlement_file", settlementFile)
        .put("provider", provider)
        .put("merchant_prefix", merchantPrefix)
        .put("window", windowFrom == null ? null
            : new JsonObject().put("from", windowFrom.toString()).put("to", windowTo.toString()))
        .put("settlement_lag_seconds", settlementLagSeconds)
        .put("as_of", asOf.toString())
        .put("error", error)
        .put("started_at", startedAt.toString())
        .put("finished_at", finishedAt == null ? null : finishedAt.toString());
  }
}
