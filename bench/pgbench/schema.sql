-- Bench copies of the gateway's tables, in the bench's own schema, so that pgbench never writes
-- to the tables the running gateway uses. Every table of schema idemgate is copied with its
-- indexes and constraints (LIKE ... INCLUDING ALL), so the copies follow the migrations; and so is
-- every function of schema idemgate (the statements call them: COMPLETE's charge_holders), made to
-- read the copies.
CREATE SCHEMA IF NOT EXISTS idemgate_bench;

DO $$
DECLARE t record;
BEGIN
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'idemgate_bench' LOOP
    EXECUTE format('DROP TABLE idemgate_bench.%I CASCADE', t.tablename);
  END LOOP;
  FOR t IN SELECT tablename FROM pg_tables
           WHERE schemaname = 'idemgate' AND tablename NOT LIKE 'flyway%' LOOP
    EXECUTE format('CREATE TABLE idemgate_bench.%I (LIKE idemgate.%I INCLUDING ALL)', t.tablename, t.tablename);
  END LOOP;
  FOR t IN SELECT pg_get_functiondef(p.oid) AS def FROM pg_proc p WHERE p.pronamespace = 'idemgate'::regnamespace LOOP
    EXECUTE replace(t.def, 'idemgate.', 'idemgate_bench.');  -- CREATE OR REPLACE: a second run replaces it
  END LOOP;
END $$;

CREATE TABLE idemgate_bench.naive_keys (
  merchant_id     text        NOT NULL,
  idempotency_key text        NOT NULL,
  fingerprint     text        NOT NULL,
  state           text        NOT NULL,
  response_status integer,
  response_body   text,
  created_at      timestamptz NOT NULL,
  PRIMARY KEY (merchant_id, idempotency_key)
);
