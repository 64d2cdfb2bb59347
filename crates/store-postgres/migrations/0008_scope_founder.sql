-- The user who shared a space: their devices may hold its records from
-- before it was shared, so moving into its scope they need its tombstones
-- too; any other member moves in with live records only. For spaces shared
-- before this column, the space record's creator (who held it in their
-- personal scope).
ALTER TABLE scopes ADD COLUMN founder UUID;
UPDATE scopes SET founder = (
    SELECT r.created_by FROM records r WHERE r.scope_id = scopes.id AND r.id = scopes.space_id)
WHERE space_id IS NOT NULL;
