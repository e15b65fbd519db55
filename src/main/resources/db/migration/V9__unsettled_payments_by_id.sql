-- GET /v1/payments/{id} of a payment answered 202 before its outcome reached the ledger (PostgreSQL
-- did not take the charged outcome in time: the record stays PROCESSING until it is written again
-- or recovery makes it PENDING) finds it in its record, as pending, instead of answering 404 "no
-- payment with this id" for a card that may be charged. Only unsettled records are indexed: one
-- entry per payment in flight or pending.
--
-- Built CONCURRENTLY, so that claims go on while it is built over a large table (Flyway runs each
-- such statement outside a transaction, and holds its own lock as a session lock: Migrations). A
-- build cut short (the process killed) leaves an invalid index and no record of this migration, so
-- the next start runs it again: the DROP removes such a leftover first.
DROP INDEX CONCURRENTLY IF EXISTS idempotency_keys_unsettled_payment;
CREATE INDEX CONCURRENTLY idempotency_keys_unsettled_payment
  ON idempotency_keys (payment_id) WHERE state IN ('PROCESSING', 'PENDING');
