-- The ledger, newest first: one row per file seen.
SELECT id, name, status, checksum, size, rows_read, rows_inserted, rows_updated, rows_unchanged,
       duplicate_keys, columns_added, columns_dropped, moved_to, error, started_at, run_id
FROM ledger
ORDER BY id DESC
