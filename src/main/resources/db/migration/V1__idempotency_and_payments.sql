-- Idempotency records: one per (merchant, key) while the key is retained. Purged after expiry.
CREATE TABLE idempotency_keys (
  merchant_id        text        NOT NULL,
  idempotency_key    text        NOT NULL,
  fingerprint        text        NOT NULL,          -- hex SHA-256 of operation + canonical body
  state              text        NOT NULL CHECK (state IN ('PROCESSING', 'PENDING', 'COMPLETED')),
  epoch              integer     NOT NULL,          -- fencing token: every ownership change bumps it
  generation         integer     NOT NULL,          -- bumped when an expired key is used again
  payment_id         text        NOT NULL,
  provider_key       text        NOT NULL,
  lease_expires_at   timestamptz NOT NULL,
  -- what recovery needs to write the ledger row without the original request
  amount             bigint      NOT NULL,
  currency           text        NOT NULL,
  merchant_reference text,
  description        text,
  metadata           jsonb,
  -- the stored response, replayed byte for byte
  response_status    integer,
  response_body      text,
  expires_at         timestamptz,
  inquiry_attempts   integer     NOT NULL DEFAULT 0,
  next_inquiry_at    timestamptz,
  created_at         timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (merchant_id, idempotency_key)
);

CREATE INDEX idempotency_keys_expired_leases ON idempotency_keys (lease_expires_at) WHERE state = 'PROCESSING';
CREATE INDEX idempotency_keys_pending ON idempotency_keys (next_inquiry_at) WHERE state = 'PENDING';
CREATE INDEX idempotency_keys_retention ON idempotency_keys (expires_at) WHERE state = 'COMPLETED';

-- The ledger: every payment the provider may have charged. Never purged with the keys.
CREATE TABLE payments (
  id                 text        PRIMARY KEY,
  merchant_id        text        NOT NULL,
  provider_key       text        NOT NULL UNIQUE,
  amount             bigint      NOT NULL CHECK (amount > 0),
  currency           text        NOT NULL,
  status             text        NOT NULL CHECK (status IN ('succeeded', 'declined', 'pending')),
  merchant_reference text,
  description        text,
  metadata           jsonb,
  provider           text        NOT NULL,
  provider_reference text,
  decline_code       text,
  created_at         timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payments_by_merchant_time ON payments (merchant_id, created_at);
CREATE INDEX payments_by_provider_reference ON payments (provider_reference);
