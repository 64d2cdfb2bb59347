-- Bumped by a password change: tokens of an older generation are refused.
ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;

-- Tokens revoked by logout, kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT   PRIMARY KEY,
    user_id    UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_by_user ON revoked_tokens (user_id);
