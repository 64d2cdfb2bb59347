-- Shared spaces. Records belong to a scope, not to a user: every user has a
-- personal scope (all unshared data), and a space shared with another
-- account moves into a scope of its own. Each scope has its own counter
-- (the cursor holds one position per scope) and its members.
CREATE TABLE scopes (
    id         BIGSERIAL PRIMARY KEY,   -- appears in cursors: s<id>
    space_id   UUID,                    -- the shared space; NULL for a personal scope
    version    BIGINT NOT NULL DEFAULT 0, -- bumped under the scope's row lock: commit order
    created_at BIGINT NOT NULL,
    migrating  UUID                     -- only during this migration
);

CREATE TABLE members (
    scope_id BIGINT NOT NULL REFERENCES scopes (id) ON DELETE CASCADE,
    user_id  UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 'removed': a former member; its writes are forbidden and its devices
    -- are told to drop the space.
    role     TEXT   NOT NULL CHECK (role IN ('owner', 'editor', 'viewer', 'removed')),
    since    BIGINT NOT NULL,
    PRIMARY KEY (scope_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

-- Every existing user's personal scope carries the user's counter as its
-- version, so v1.u.N cursors stay exact.
INSERT INTO scopes (space_id, version, created_at, migrating)
    SELECT NULL, sync_version, created_at, id FROM users;
INSERT INTO members (scope_id, user_id, role, since)
    SELECT id, migrating, 'owner', created_at FROM scopes WHERE migrating IS NOT NULL;

ALTER TABLE records ADD COLUMN scope_id BIGINT, ADD COLUMN created_by UUID;
UPDATE records r SET scope_id = s.id, created_by = r.user_id FROM scopes s WHERE s.migrating = r.user_id;
ALTER TABLE records ALTER COLUMN scope_id SET NOT NULL, ALTER COLUMN created_by SET NOT NULL;
-- Dropping user_id drops the primary key and the indexes built on it.
ALTER TABLE records DROP COLUMN user_id;
ALTER TABLE records ADD PRIMARY KEY (scope_id, id),
    ADD FOREIGN KEY (scope_id) REFERENCES scopes (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX records_by_version ON records (scope_id, version);
CREATE INDEX records_by_space ON records (scope_id, space_id) WHERE space_id IS NOT NULL;
CREATE INDEX records_by_category ON records (scope_id, category_id) WHERE category_id IS NOT NULL;

ALTER TABLE scopes DROP COLUMN migrating;
ALTER TABLE users DROP COLUMN sync_version;
