-- The list of runs (GET /admin/reconciliations) reads each run's open figures as the totals its
-- summary stored minus what was resolved since, so that its cost follows the resolved discrepancies,
-- not the tens of thousands a run can hold. It finds a run's resolved discrepancies by the first
-- index (reconciliation_discrepancies_resolved, V4, has no run_id: it would read those of every run
-- ever made), and the other discrepancies of their payment and settlement row pairs (whose money
-- counts once) by the second, keyed as the pairs are grouped, a missing side included.
CREATE INDEX reconciliation_discrepancies_run_resolved
  ON reconciliation_discrepancies (run_id) WHERE status = 'resolved';
CREATE INDEX reconciliation_discrepancies_pair
  ON reconciliation_discrepancies (run_id, coalesce(payment_id, ''), coalesce(settlement_line, 0));
