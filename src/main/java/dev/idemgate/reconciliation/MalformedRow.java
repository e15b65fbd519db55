package dev.idemgate.reconciliation;

/** A line of a settlement file that was skipped, and why; the run goes on without it. */
public record MalformedRow(long line, String reason) {}
