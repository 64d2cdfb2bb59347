-- Invitations to shared spaces: a space is shared with someone only when
-- they accept. Keyed by the invitee's email (normalized), so an invitation
-- to an email without an account is stored like any other and tells its
-- sender nothing. A space is named by its owner and its id (ids are the
-- clients', unique per scope only).
CREATE TABLE invitations (
    id           TEXT    PRIMARY KEY NOT NULL,   -- UUID, the server's
    space_id     TEXT    NOT NULL,
    inviter_id   TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email        TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('editor', 'viewer')),
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'revoked')),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    responded_at INTEGER
) STRICT;
-- At most one pending invitation per sender, space and email: inviting
-- again refreshes it.
CREATE UNIQUE INDEX invitations_pending ON invitations (inviter_id, space_id, email)
    WHERE status = 'pending';
CREATE INDEX invitations_by_email ON invitations (email) WHERE status = 'pending';
-- The per-sender rate limit counts recent invitations.
CREATE INDEX invitations_by_inviter ON invitations (inviter_id, created_at);

-- "Decline and block": invitations to this space are stored but never shown
-- to this user.
CREATE TABLE invitation_blocks (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    space_id   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, space_id)
) STRICT;
