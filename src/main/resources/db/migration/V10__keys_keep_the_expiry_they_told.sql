-- The moment a stored answer told its client the key stops being replayed (Idempotency-Key-Expires),
-- on the clock of the gateway that answered, kept so that every replay read from here carries the
-- same moment as the first answer. expires_at is no longer that moment: it is PostgreSQL's now()
-- plus the key's TTL, written by the completion after the moment was taken, so PostgreSQL never
-- frees a key before (in real time) the moment its client was told, whichever clock is ahead.
-- Rows written before this version have NULL here; their expires_at is the moment they told.
-- A nullable column with no default: no table rewrite, no long lock.
ALTER TABLE idempotency_keys ADD COLUMN told_expires_at timestamptz;
