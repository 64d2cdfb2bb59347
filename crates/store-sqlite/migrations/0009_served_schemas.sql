-- The data-model schemas this deployment served, newest last: at start the
-- server compares its schema with the newest and refuses a change that
-- would break clients unless allowed (docs/SCHEMA.md). Kept apart from the
-- records: nothing here is read while serving.
CREATE TABLE served_schemas (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    document  TEXT    NOT NULL,   -- the schema, as `tidesync schema print` prints it
    served_at INTEGER NOT NULL    -- ms since the epoch, server time
) STRICT;
