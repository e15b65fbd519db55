-- Reconciliation (DESIGN §6): one row per run of a settlement file against the ledger, the
-- discrepancies it found (open until someone resolves them) and the matches that were not certain.

CREATE TABLE reconciliation_runs (
  id                 text        PRIMARY KEY,              -- rec_ + random hex
  source             text        NOT NULL CHECK (source IN ('cli', 'api')),
  status             text        NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
  settlement_file    text        NOT NULL,                 -- file name as given, for the reader of the report
  provider           text,                                 -- --provider: column mapping and ledger filter
  merchant_prefix    text,
  window_from        timestamptz,                          -- the ledger window actually used
  window_to          timestamptz,
  settlement_lag     interval    NOT NULL,
  as_of              timestamptz NOT NULL,                 -- "now" of the run: ages and leases are measured from it
  summary            jsonb,                                -- counts by category, match counts, model weights
  malformed_rows     jsonb,                                -- the first malformed rows: line and reason
  error              text,
  started_at         timestamptz NOT NULL DEFAULT now(),
  finished_at        timestamptz
);

CREATE INDEX reconciliation_runs_started ON reconciliation_runs (started_at DESC);

CREATE TABLE reconciliation_discrepancies (
  run_id              text        NOT NULL REFERENCES reconciliation_runs (id) ON DELETE CASCADE,
  id                  bigint      GENERATED ALWAYS AS IDENTITY,
  category            text        NOT NULL CHECK (category IN ('DUPLICATE_CHARGE', 'ORPHAN_AT_PROVIDER',
                        'STATUS_MISMATCH', 'AMOUNT_MISMATCH', 'CURRENCY_MISMATCH', 'MISSING_IN_SETTLEMENT',
                        'STUCK_IN_LEDGER')),
  remediation         text        NOT NULL,
  priority            integer,                              -- 1 = act first, within the run
  score               double precision,                     -- value (major units) x severity x age factor
  value_minor         bigint      NOT NULL,                 -- the money at stake, in minor units of value_currency
  value_currency      text        NOT NULL,
  payment_id          text,
  merchant_id         text,
  settlement_id       text,
  settlement_line     bigint,
  provider_reference  text,
  provider_key        text,
  ledger_amount       bigint,
  ledger_currency     text,
  ledger_status       text,
  settlement_amount   bigint,
  settlement_currency text,
  settlement_status   text,
  match_method        text,
  confidence          double precision,
  occurred_at         timestamptz NOT NULL,                 -- when the money moved (ledger or settlement side)
  evidence            jsonb       NOT NULL DEFAULT '{}',
  status              text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  resolved_at         timestamptz,
  resolution_note     text,
  PRIMARY KEY (run_id, id)
);

CREATE INDEX reconciliation_discrepancies_priority ON reconciliation_discrepancies (run_id, priority);
CREATE INDEX reconciliation_discrepancies_open ON reconciliation_discrepancies (category) WHERE status = 'open';

-- Matches that were not certain (normalised reference, probabilistic), kept for audit with their confidence.
CREATE TABLE reconciliation_matches (
  run_id          text             NOT NULL REFERENCES reconciliation_runs (id) ON DELETE CASCADE,
  settlement_line bigint           NOT NULL,
  settlement_id   text,
  payment_id      text             NOT NULL,
  method          text             NOT NULL,
  confidence      double precision NOT NULL,
  PRIMARY KEY (run_id, settlement_line)
);

-- Provider references compared without case or punctuation (CH-SIM-12 = ch_sim_12). The Java
-- side (SettlementReader.normalizeReference) computes the same for the file.
CREATE FUNCTION recon_ref_norm(ref text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT lower(regexp_replace(ref, '[^A-Za-z0-9]+', '', 'g')) $$;
