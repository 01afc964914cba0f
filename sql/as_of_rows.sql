-- The rows as they stood right after ledger entry ?1 was applied: for each key, the values of
-- its last real version (insert or update) and the arrival position (seq) of its last write,
-- an unchanged re-send included, since that moved the row to the end.
WITH last AS (
    SELECT key,
           max(id) AS touch,
           max(CASE WHEN kind <> 'unchanged' THEN id END) AS version
    FROM record_version
    WHERE file_id <= ?1
    GROUP BY key
)
SELECT last.key, v.vals
FROM last
JOIN record_version t ON t.id = last.touch
JOIN record_version v ON v.id = last.version
ORDER BY {order}
