-- Records of any declared collection (issue 21): `kind` holds the
-- collection's name, no longer one of three, and the two reference columns
-- are named for what they hold in any schema. `root_id` is the sharing root
-- the record names (a space's id for a category or an item: what
-- `space_id` held), `parent_id` its nearest parent that is not a root (an
-- item's category: what `category_id` held). The data is unchanged.
-- SQLite cannot drop a CHECK in place: the table is rebuilt.
CREATE TABLE records_generic (
    scope_id    INTEGER NOT NULL REFERENCES scopes (id) ON DELETE CASCADE,
    id          TEXT    NOT NULL,
    kind        TEXT    NOT NULL,          -- the collection's name
    version     INTEGER NOT NULL,
    root_id     TEXT,
    parent_id   TEXT,
    data        TEXT    NOT NULL,
    clocks      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    device_id   TEXT    NOT NULL,
    server_time INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,          -- the record's userId
    PRIMARY KEY (scope_id, id)
) STRICT;
INSERT INTO records_generic
    SELECT scope_id, id, kind, version, space_id, category_id, data, clocks,
           created_at, updated_at, deleted_at, device_id, server_time, created_by
    FROM records;
DROP TABLE records;
ALTER TABLE records_generic RENAME TO records;
CREATE UNIQUE INDEX records_by_version ON records (scope_id, version);
CREATE INDEX records_by_root ON records (scope_id, root_id) WHERE root_id IS NOT NULL;
CREATE INDEX records_by_parent ON records (scope_id, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX records_tombstones ON records (server_time) WHERE deleted_at IS NOT NULL;
