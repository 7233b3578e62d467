-- Accounts: teams (sites), people, their team memberships and their sign-in sessions;
-- and who each report belongs to, recorded by the server when it is first stored.

CREATE TABLE teams (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    login         TEXT NOT NULL UNIQUE,       -- lower case
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('field', 'supervisor', 'admin')),
    password_hash TEXT NOT NULL,              -- argon2id PHC string
    active        INTEGER NOT NULL DEFAULT 1, -- 0: deactivated, cannot sign in or sync
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id  TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,                -- 0: the home team new reports are filed for
    PRIMARY KEY (user_id, team_id)
) STRICT, WITHOUT ROWID;

-- One row per signed-in browser. Only a SHA-256 of the token is kept, so a copy of the
-- database does not let anyone sign in.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_agent   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);

ALTER TABLE reports ADD COLUMN owner_id TEXT;
ALTER TABLE reports ADD COLUMN team_id TEXT;
CREATE INDEX reports_by_team ON reports (team_id);
CREATE INDEX reports_by_owner ON reports (owner_id);
