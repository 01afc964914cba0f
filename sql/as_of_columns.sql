-- The columns live right after ledger entry ?1 was applied, key first, then first-seen order.
SELECT id, name, folded, position, is_key
FROM catalog
WHERE added_by <= ?1 AND (dropped_by IS NULL OR dropped_by > ?1)
ORDER BY is_key DESC, position
