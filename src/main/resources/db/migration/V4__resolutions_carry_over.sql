-- A resolution carries over to later runs that find the same discrepancy (the same category and
-- the same facts). This index finds the resolved discrepancies a new run's could repeat.
CREATE INDEX reconciliation_discrepancies_resolved
  ON reconciliation_discrepancies (category, coalesce(payment_id, ''), coalesce(settlement_id, ''))
  WHERE status = 'resolved';
