-- What each completed reconciliation run matched: one row per settlement file row (settled, refunded
-- or chargeback) matched to a ledger payment. A later run looks up the payments it matches here, so
-- that a payment an earlier file settled and this file settles again under another settlement_id
-- (the customer charged twice, across files) is reported, and the same settlement seen again (the
-- same file reconciled twice, a monthly file repeating the daily ones) is not (docs/reconciliation.md).
--
-- Written in the run's own transaction, with its discrepancies: a FAILED run leaves none. The rows
-- go with their run (ON DELETE CASCADE): deleting old runs is what bounds the table, which otherwise
-- grows by one row per matched settlement row, about 200 bytes with its index.
-- The file's name is its run's (reconciliation_runs.settlement_file), not repeated on every row.
CREATE TABLE reconciliation_settlements (
  run_id          text             NOT NULL REFERENCES reconciliation_runs (id) ON DELETE CASCADE,
  settlement_line bigint           NOT NULL,
  payment_id      text             NOT NULL,   -- the ledger payment (or claim) the row was matched to
  settlement_id   text             NOT NULL,   -- as the file gives it
  status          text             NOT NULL,   -- settled, refunded or chargeback
  amount          bigint           NOT NULL,   -- the file's, in minor units
  currency        text             NOT NULL,
  settled_at      timestamptz      NOT NULL,
  confidence      double precision NOT NULL,   -- of the match: 1 by exact reference or provider key
  PRIMARY KEY (run_id, settlement_line)
);

CREATE INDEX reconciliation_settlements_payment ON reconciliation_settlements (payment_id);
