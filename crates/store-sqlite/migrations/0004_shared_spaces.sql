-- Shared spaces. Records belong to a scope, not to a user: every user has a
-- personal scope (all unshared data), and a space shared with another
-- account moves into a scope of its own. Each scope has its own counter
-- (the cursor holds one position per scope) and its members.
CREATE TABLE scopes (
    id         INTEGER PRIMARY KEY,        -- appears in cursors: s<id>
    space_id   TEXT,                       -- the shared space; NULL for a personal scope
    version    INTEGER NOT NULL DEFAULT 0, -- bumped only by the writer: commit order
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE members (
    scope_id INTEGER NOT NULL REFERENCES scopes (id) ON DELETE CASCADE,
    user_id  TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 'removed': a former member; its writes are forbidden and its devices
    -- are told to drop the space.
    role     TEXT    NOT NULL CHECK (role IN ('owner', 'editor', 'viewer', 'removed')),
    since    INTEGER NOT NULL,
    PRIMARY KEY (scope_id, user_id)
) STRICT;
CREATE INDEX members_by_user ON members (user_id);

-- Every existing user's personal scope takes the user's rowid as its id and
-- the user's counter as its version, so v1.u.N cursors stay exact.
INSERT INTO scopes (id, space_id, version, created_at)
    SELECT rowid, NULL, sync_version, created_at FROM users;
INSERT INTO members (scope_id, user_id, role, since)
    SELECT rowid, id, 'owner', created_at FROM users;

CREATE TABLE records_scoped (
    scope_id    INTEGER NOT NULL REFERENCES scopes (id) ON DELETE CASCADE,
    id          TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('space', 'category', 'item')),
    version     INTEGER NOT NULL,
    space_id    TEXT,
    category_id TEXT,
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
INSERT INTO records_scoped
    SELECT u.rowid, r.id, r.kind, r.version, r.space_id, r.category_id, r.data, r.clocks,
           r.created_at, r.updated_at, r.deleted_at, r.device_id, r.server_time, r.user_id
    FROM records r JOIN users u ON u.id = r.user_id;
DROP TABLE records;
ALTER TABLE records_scoped RENAME TO records;
CREATE UNIQUE INDEX records_by_version ON records (scope_id, version);
CREATE INDEX records_by_space ON records (scope_id, space_id) WHERE space_id IS NOT NULL;
CREATE INDEX records_by_category ON records (scope_id, category_id) WHERE category_id IS NOT NULL;

ALTER TABLE users DROP COLUMN sync_version;
