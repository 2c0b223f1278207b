-- Accounts (teams, users, signed-in sessions) and what the console needs of a handed-off
-- conversation: its routing, the agent who has it, and internal notes. Identifiers use the
-- binary collation, as in 0001.

CREATE TABLE teams (
    id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    name VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE users (
    id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    login VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL UNIQUE,
    name VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL,
    -- `admin` or `agent`.
    role VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    team_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    -- Argon2id in the PHC string format.
    password_hash VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    -- How many conversations the agent takes at once.
    capacity INTEGER NOT NULL DEFAULT 5,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (team_id) REFERENCES teams (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE auth_sessions (
    -- SHA-256 of the cookie's token: a stolen database does not sign anyone in.
    token_hash VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    user_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    csrf VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

ALTER TABLE conversations
    ADD COLUMN queue VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    ADD COLUMN team VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    ADD COLUMN priority VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    ADD COLUMN reason LONGTEXT CHARACTER SET utf8mb4 NULL,
    ADD COLUMN assignee VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    ADD COLUMN handed_off_at BIGINT NULL,
    ADD FOREIGN KEY (assignee) REFERENCES users (id);

CREATE TABLE notes (
    conversation_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    at BIGINT NOT NULL,
    author VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    text LONGTEXT CHARACTER SET utf8mb4 NOT NULL,
    INDEX notes_conversation (conversation_id, at),
    FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    FOREIGN KEY (author) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
