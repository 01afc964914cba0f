-- Every write of one row (?1 = key), oldest first, with the file that made it.
SELECT v.kind, v.vals, v.line, l.id, l.name, l.finished_at
FROM record_version v
JOIN ledger l ON l.id = v.file_id
WHERE v.key = ?1
ORDER BY v.id
