-- A released payment's idempotency key and provider key, so that the retry under that key is sent
-- under the same provider key as the payment released. The first use of a key already is (its
-- provider key is derived from the key alone); a key used again after it expired derives a provider
-- key from each new payment id, and the retry after a release would otherwise get a fresh one: if
-- the released charge landed after all (the limits README admits: an instance clock ahead, an
-- acquirer that forgets early), the acquirer could not match the two and the card would be charged
-- twice. Null in rows released before this version (their retries keep the behaviour of then).
ALTER TABLE released_payments ADD COLUMN idempotency_key text, ADD COLUMN provider_key text;
-- Read only when a key that has a payment in the ledger is claimed again; released_payments holds
-- released payments only, a small table, so a plain CREATE INDEX locks it for moments.
CREATE INDEX released_payments_by_key ON released_payments (merchant_id, idempotency_key, released_at)
  WHERE provider_key IS NOT NULL;
