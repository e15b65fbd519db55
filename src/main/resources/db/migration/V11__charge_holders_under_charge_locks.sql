-- One charge is one payment: the grouped completion (IdempotencyStore's COMPLETE) writes a succeeded
-- answer as pending when its charge id is already another succeeded payment's of the same acquirer.
-- Looked up by the statement itself, the ledger was read as of the statement's start, with no lock:
-- two payments given the same new charge id by two statements whose transactions overlapped (two
-- pods; a request group and a recovery group) saw nothing of each other and were both recorded.
--
-- This function takes the lock of each charge id first, held until the caller's transaction ends,
-- then looks the ids up. It is VOLATILE and plpgsql: under READ COMMITTED each query it runs reads
-- a snapshot of its own, taken after the locks, so a completion that waited for another one's
-- lock sees that one's committed ledger row. The lock is the one an operator's verdict takes
-- (RecoveryStore.LOCK_CHARGE: the two keys 1229870151 and hashtext(charge id); keep both sides
-- the same), so verdicts and completions of one charge id go one after the other too.
--
-- The locks are taken in one order (by their key, each once) and all before the statement writes
-- a row: two groups naming the same charge ids cannot wait for each other's charge locks, and a
-- group that waits for one holds no record or ledger row that another statement could be waiting
-- for. A completion of a charge id no other transaction is writing takes a free lock: no wait.
--
-- charge_ids holds, at the position of each payment of the group, its charge id if it is to be
-- checked (a succeeded completion), else NULL; the answer holds at the same position the id of
-- another succeeded payment of that acquirer with that charge id (under providers' name or one of
-- aliases: its earlier names), else NULL. STRICT: COMPLETE passes charge_ids NULL for a group with
-- nothing to check, and the function is then not even called.
--
-- Not SECURITY DEFINER (it runs with the caller's rights: SELECT on payments) and every name in it
-- is qualified; pg_catalog is searched first in any search_path, so a caller's path changes
-- nothing. No SET search_path clause: it would cost every call a settings save and restore.
CREATE FUNCTION idemgate.charge_holders(providers text[], aliases text[], charge_ids text[], payment_ids text[])
  RETURNS text[] LANGUAGE plpgsql VOLATILE STRICT AS $$
DECLARE
  charge_lock integer;
  holders text[];
BEGIN
  FOR charge_lock IN SELECT DISTINCT hashtext(c) FROM unnest(charge_ids) c WHERE c IS NOT NULL ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(1229870151, charge_lock);
  END LOOP;
  -- A lateral probe with LIMIT, planned per row through payments_by_provider_reference (also under
  -- the request pool's generic plans: RequestPathPlansIT).
  SELECT array_agg(other.id ORDER BY t.n) INTO holders
  FROM unnest(providers, charge_ids, payment_ids) WITH ORDINALITY AS t(provider, charge_id, payment_id, n)
  LEFT JOIN LATERAL (SELECT p.id FROM idemgate.payments p
                     WHERE t.charge_id IS NOT NULL AND p.provider_reference = t.charge_id
                       AND p.id <> t.payment_id AND p.status = 'succeeded'
                       AND (p.provider = t.provider OR p.provider = ANY(aliases))
                     LIMIT 1) other ON true;
  RETURN holders;
END $$;

-- EXECUTE is PUBLIC's by default; a database whose default privileges take it away from PUBLIC
-- still lets each role that may read the ledger call it (as V6 gives released_payments' rights).
DO $$
DECLARE
  granted record;
BEGIN
  FOR granted IN
    SELECT DISTINCT r.rolname
    FROM pg_class c
    CROSS JOIN LATERAL aclexplode(c.relacl) a
    JOIN pg_roles r ON r.oid = a.grantee
    WHERE c.oid = 'idemgate.payments'::regclass
      AND a.privilege_type = 'SELECT'
      AND a.grantee <> c.relowner
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION idemgate.charge_holders(text[], text[], text[], text[]) TO %I',
                   granted.rolname);
  END LOOP;
END $$;
