-- Reconciliation looks up, in the whole ledger, the settlement rows it could not match in the
-- file's window (a refund or chargeback of a payment charged months before): by provider_key (its
-- UNIQUE index) and by the reference compared without case or punctuation, which needs this index.
--
-- CONCURRENTLY, so that a large live payments table is not locked for writes while it is built.
-- It cannot run in a transaction: V5__….sql.conf says executeInTransaction=false, and Migrations
-- turns off Flyway's transactional advisory lock, whose open transaction the build would wait for
-- forever. Hazard: a build that fails leaves an INVALID index of this name; drop it (DROP INDEX
-- CONCURRENTLY) and repair Flyway's history before migrating again, since IF NOT EXISTS would keep it.
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_by_reference_key ON payments (recon_ref_norm(provider_reference));
