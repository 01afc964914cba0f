-- One line of counts for `csv-watchdog status`.
SELECT (SELECT count(*) FROM record_data),
       (SELECT count(*) FROM catalog WHERE dropped_by IS NULL),
       (SELECT count(*) FROM ledger WHERE status = 'applied'),
       (SELECT count(*) FROM ledger WHERE status = 'rejected'),
       (SELECT count(*) FROM ledger WHERE status = 'duplicate'),
       (SELECT count(*) FROM ledger WHERE moved_at IS NULL)
