-- The rows as they stood right after ledger entry ?1 was applied: for each key, the fields of
-- its last real version (insert or update) with the file's column list, ordered by the
-- arrival position of its last write, an unchanged re-send included (that moved the row to
-- the end too).
WITH last AS (
    SELECT key,
           max(seq) AS touch,
           max(CASE WHEN kind <> 'unchanged' THEN seq END) AS version
    FROM record_version
    WHERE file_id <= ?1
    GROUP BY key
)
SELECT last.key, v.vals, fc.column_ids
FROM last
JOIN record_version v ON v.key = last.key AND v.seq = last.version
JOIN file_columns fc ON fc.file_id = v.file_id
ORDER BY {order}
