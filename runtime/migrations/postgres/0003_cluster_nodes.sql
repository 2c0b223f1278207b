-- Several kefu processes sharing one database: each running process (node) keeps a heartbeat
-- row, and each conversation records the node whose task runs it. A conversation whose node's
-- heartbeat is stale (or whose node is gone) may be taken over by another node.

CREATE TABLE nodes (
    id TEXT NOT NULL PRIMARY KEY,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

ALTER TABLE conversations ADD COLUMN node TEXT;

CREATE INDEX conversations_node ON conversations (node);
