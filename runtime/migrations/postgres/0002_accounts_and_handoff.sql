-- Accounts (teams, users, signed-in sessions) and what the console needs of a handed-off
-- conversation: its routing, the agent who has it, and internal notes.

CREATE TABLE teams (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT NOT NULL PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- `admin` or `agent`.
    role TEXT NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams (id),
    -- Argon2id in the PHC string format.
    password_hash TEXT NOT NULL,
    -- How many conversations the agent takes at once.
    capacity INTEGER NOT NULL DEFAULT 5,
    created_at BIGINT NOT NULL
);

CREATE TABLE auth_sessions (
    -- SHA-256 of the cookie's token: a stolen database does not sign anyone in.
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

ALTER TABLE conversations ADD COLUMN queue TEXT;
ALTER TABLE conversations ADD COLUMN team TEXT;
ALTER TABLE conversations ADD COLUMN priority TEXT;
ALTER TABLE conversations ADD COLUMN reason TEXT;
ALTER TABLE conversations ADD COLUMN assignee TEXT REFERENCES users (id);
ALTER TABLE conversations ADD COLUMN handed_off_at BIGINT;

CREATE TABLE notes (
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    at BIGINT NOT NULL,
    author TEXT NOT NULL REFERENCES users (id),
    text TEXT NOT NULL
);
CREATE INDEX notes_conversation ON notes (conversation_id, at);
