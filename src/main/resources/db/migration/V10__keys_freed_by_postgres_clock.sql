-- When PostgreSQL frees a completed key: its own now() plus the key's TTL, written by the completion
-- after the gateway took the moment its answer told (expires_at, on the answering gateway's clock,
-- replayed as Idempotency-Key-Expires, unchanged in meaning so that pods of the previous version
-- replay the same moment). A key is free once both have passed (greatest(expires_at, frees_at)), so
-- it is never freed before, in real time, the moment its client was told, whichever clock is ahead;
-- a value left by an earlier use or by a pod of the previous version is older and never frees a key
-- early. NULL for records written before.
--
-- A nullable column with no default: no rewrite. The ALTER still needs the table's strongest lock,
-- and while it waits for one (a long transaction that read the table: a reconciliation run, a
-- pg_dump) every payment statement would queue behind it; so it gives up after a second instead,
-- and the instance fails to start and tries again (docs/operations.md).
SET LOCAL lock_timeout = '1s';
ALTER TABLE idempotency_keys ADD COLUMN frees_at timestamptz;
