-- The storage schema of kefu on MySQL / MariaDB. Times are Unix milliseconds; JSON documents are
-- LONGTEXT in utf8mb4 (so Chinese text and emoji round-trip), stored byte-for-byte as given.
-- Identifiers use the binary collation so that they compare exactly as on SQLite and PostgreSQL.

CREATE TABLE flow_versions (
    flow_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    version BIGINT NOT NULL,
    hash VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    document LONGTEXT CHARACTER SET utf8mb4 NOT NULL,
    PRIMARY KEY (flow_id, version)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE conversations (
    id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    flow_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    flow_version BIGINT NOT NULL,
    flow_hash VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    owner VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    status VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at BIGINT NOT NULL,
    -- Per-conversation counters: the last sequence number given to a message and to an event.
    last_message_seq BIGINT NOT NULL DEFAULT 0,
    last_event_seq BIGINT NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE messages (
    conversation_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    seq BIGINT NOT NULL,
    sender VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    kind VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    body LONGTEXT CHARACTER SET utf8mb4 NOT NULL,
    client_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    -- A client id is unique within its conversation; rows without one (NULL) never collide.
    UNIQUE KEY messages_client_id (conversation_id, client_id),
    FOREIGN KEY (conversation_id) REFERENCES conversations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE events (
    conversation_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    kind VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    data LONGTEXT CHARACTER SET utf8mb4 NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    FOREIGN KEY (conversation_id) REFERENCES conversations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE sessions (
    conversation_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    turn BIGINT NOT NULL,
    state LONGTEXT CHARACTER SET utf8mb4 NOT NULL,
    FOREIGN KEY (conversation_id) REFERENCES conversations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
