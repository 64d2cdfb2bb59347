-- Bounded history: tombstones and sync_log rows older than the retention
-- horizon are collected. `collected` is the highest version of a scope whose
-- tombstone was collected: a cursor behind it may have missed a deletion,
-- so it must resync (409 resync_required).
ALTER TABLE scopes ADD COLUMN collected BIGINT NOT NULL DEFAULT 0;
-- Only tombstones: what the collector looks for, without a scan of live rows.
CREATE INDEX records_tombstones ON records (server_time) WHERE deleted_at IS NOT NULL;
CREATE INDEX sync_log_by_time ON sync_log (server_time);
