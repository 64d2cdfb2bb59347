-- The user's version counter: the pull cursor. Bumped while holding the
-- user's row lock (SELECT ... FOR UPDATE), so versions become visible in
-- commit order, unlike a sequence, whose values are taken before commit.
ALTER TABLE users ADD COLUMN sync_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE records (
    user_id     UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id          UUID   NOT NULL,
    kind        TEXT   NOT NULL CHECK (kind IN ('space', 'category', 'item')),
    version     BIGINT NOT NULL,
    space_id    UUID,
    category_id UUID,
    data        TEXT   NOT NULL,
    clocks      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT,
    device_id   TEXT   NOT NULL,
    server_time BIGINT NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE UNIQUE INDEX records_by_version ON records (user_id, version);
CREATE INDEX records_by_space ON records (user_id, space_id) WHERE space_id IS NOT NULL;
CREATE INDEX records_by_category ON records (user_id, category_id) WHERE category_id IS NOT NULL;

CREATE TABLE sync_log (
    user_id      UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    operation_id TEXT   NOT NULL,
    device_id    TEXT   NOT NULL,
    entity_type  TEXT,
    entity_id    TEXT,
    operation    TEXT,
    changes      TEXT   NOT NULL,
    ack          TEXT   NOT NULL,
    client_time  BIGINT,
    server_time  BIGINT NOT NULL,
    PRIMARY KEY (user_id, operation_id)
);
