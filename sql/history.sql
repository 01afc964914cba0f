-- Every write of one row (?1 = key), oldest first, with the file that made it and the catalog
-- ids of the fields in vals.
SELECT v.kind, v.vals, v.line, l.id, l.name, l.finished_at, fc.column_ids
FROM record_version v
JOIN ledger l ON l.id = v.file_id
LEFT JOIN file_columns fc ON fc.file_id = v.file_id
WHERE v.key = ?1
ORDER BY v.seq
