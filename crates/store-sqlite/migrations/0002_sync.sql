-- The user's version counter: the pull cursor. Bumped only by the single
-- writer (BEGIN IMMEDIATE), so versions become visible in commit order.
ALTER TABLE users ADD COLUMN sync_version INTEGER NOT NULL DEFAULT 0;

-- Spaces, categories and items: one row per record, latest state only.
CREATE TABLE records (
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id          TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('space', 'category', 'item')),
    -- Position in the user's change order; the pull cursor compares with it.
    version     INTEGER NOT NULL,
    space_id    TEXT,
    category_id TEXT,
    data        TEXT    NOT NULL, -- JSON object of the entity's fields
    clocks      TEXT    NOT NULL, -- JSON: the version that last wrote each field
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    device_id   TEXT    NOT NULL,
    server_time INTEGER NOT NULL, -- server clock when this version was written
    PRIMARY KEY (user_id, id)
) STRICT;
CREATE UNIQUE INDEX records_by_version ON records (user_id, version);
CREATE INDEX records_by_space ON records (user_id, space_id) WHERE space_id IS NOT NULL;
CREATE INDEX records_by_category ON records (user_id, category_id) WHERE category_id IS NOT NULL;

-- Every operation received, with its answer: the idempotency key and the audit log.
CREATE TABLE sync_log (
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    operation_id TEXT    NOT NULL,
    device_id    TEXT    NOT NULL,
    entity_type  TEXT,
    entity_id    TEXT,
    operation    TEXT,
    changes      TEXT    NOT NULL, -- JSON of the fields sent (validated)
    ack          TEXT    NOT NULL, -- JSON of the acknowledgement returned
    client_time  INTEGER,
    server_time  INTEGER NOT NULL,
    PRIMARY KEY (user_id, operation_id)
) STRICT;
