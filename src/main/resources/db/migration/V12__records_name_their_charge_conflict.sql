-- Why a payment is pending, when the reason is a charge id that is already another payment's: the
-- grouped completion (IdempotencyStore's COMPLETE) writes a succeeded answer as pending when V11's
-- charge_holders finds that charge id on another succeeded payment of the acquirer. The operator who
-- settles it (/admin/pending, then POST /admin/pending/{payment_id}/resolve) needs both ids; they
-- were only in a WARN limited to one line a second, so they were lost when many came at once.
--
-- charge_conflict_reference: the charge id the acquirer answered; charge_conflict_with: the payment
-- that holds it in the ledger. Written by COMPLETE (both set when it writes the pending alternative,
-- both NULL otherwise) and cleared by CLAIM when a key is used again. NULL for records written
-- before, and for records pods of the previous version write (they neither set nor clear them).
--
-- Nullable columns with no default: a change of the catalog only, no rewrite of the table and no
-- scan of it. The ALTER still needs the table's strongest lock, and while it waits for it (behind a
-- long transaction that read the table: a reconciliation run, a pg_dump) every payment statement
-- would queue behind it; so it gives up after a second, as V10 does, and the instance fails to start
-- and tries again (docs/operations.md). Both columns in one ALTER: one lock, taken once.
SET LOCAL lock_timeout = '1s';
ALTER TABLE idempotency_keys ADD COLUMN charge_conflict_reference text, ADD COLUMN charge_conflict_with text;
