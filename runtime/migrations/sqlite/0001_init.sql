-- The storage schema of kefu on SQLite (the embedded default). Times are Unix milliseconds;
-- JSON documents are TEXT, stored byte-for-byte as given.

CREATE TABLE flow_versions (
    flow_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    hash TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (flow_id, version)
);

CREATE TABLE conversations (
    id TEXT NOT NULL PRIMARY KEY,
    flow_id TEXT NOT NULL,
    flow_version INTEGER NOT NULL,
    flow_hash TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- Per-conversation counters: the last sequence number given to a message and to an event.
    last_message_seq INTEGER NOT NULL DEFAULT 0,
    last_event_seq INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE messages (
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    seq INTEGER NOT NULL,
    sender TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    client_id TEXT,
    at INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- A client id is unique within its conversation; rows without one (NULL) never collide.
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_id);

CREATE TABLE events (
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE sessions (
    conversation_id TEXT NOT NULL PRIMARY KEY REFERENCES conversations (id),
    turn INTEGER NOT NULL,
    state TEXT NOT NULL
);
