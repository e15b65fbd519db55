-- Which provider a claim was sent to, so that recovery only asks that provider about it. Without
-- it, a gateway deployment with another provider sharing this database would ask its own provider,
-- hear "never seen", and release a record whose charge is real. NULL for claims made before.
ALTER TABLE idempotency_keys ADD COLUMN provider_id text;
