-- Accounts. Times are Unix milliseconds (UTC), as on SQLite, so both backends
-- hand the same values to the same code.
CREATE TABLE users (
    id            UUID   PRIMARY KEY,
    email         TEXT   NOT NULL UNIQUE,
    name          TEXT   NOT NULL,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
