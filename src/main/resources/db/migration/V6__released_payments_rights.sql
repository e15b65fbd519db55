-- released_payments (V5) is new to roles that were given rights on the ledger table by table, such as
-- a gateway role that runs with DML rights only while migrations run under an owner role
-- (docs/operations.md, "PostgreSQL"): without them every GET /v1/payments/{id} and every release
-- of a pending payment would fail. Each role that may read or insert into the ledger may now do the
-- same here, which is all the gateway does with this table.
DO $$
DECLARE
  granted record;
BEGIN
  FOR granted IN
    SELECT DISTINCT r.rolname, a.privilege_type
    FROM pg_class c
    CROSS JOIN LATERAL aclexplode(c.relacl) a
    JOIN pg_roles r ON r.oid = a.grantee
    WHERE c.oid = 'idemgate.payments'::regclass
      AND a.privilege_type IN ('SELECT', 'INSERT')
      AND a.grantee <> c.relowner
  LOOP
    EXECUTE format('GRANT %s ON idemgate.released_payments TO %I', granted.privilege_type, granted.rolname);
  END LOOP;
END $$;
