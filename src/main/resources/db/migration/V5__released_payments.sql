-- Payments whose key was released: the acquirer never charged them (recovery heard "never seen",
-- or an operator said so), their record and pending ledger row were deleted, and a retry with the
-- same key is a new payment with a new id under the same provider key (which is why the ledger row,
-- its provider_key UNIQUE, cannot stay). The client may hold the released id from a 202, so
-- GET /v1/payments/{id} answers it from here as not_charged. Written by the statement that releases;
-- never purged, like the ledger. Only what that answer shows: no source, description or metadata.
CREATE TABLE released_payments (
  id                 text        PRIMARY KEY,
  merchant_id        text        NOT NULL,
  amount             bigint      NOT NULL,
  currency           text        NOT NULL,
  merchant_reference text,
  provider           text        NOT NULL,
  reason             text        NOT NULL CHECK (reason IN ('provider_never_saw_it', 'operator_not_charged')),
  created_at         timestamptz NOT NULL,                -- when the payment was claimed, as its answers said
  released_at        timestamptz NOT NULL DEFAULT now()
);
