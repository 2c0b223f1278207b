-- Several kefu processes sharing one database: each running process (node) keeps a heartbeat
-- row, and each conversation records the node whose task runs it. A conversation whose node's
-- heartbeat is stale (or whose node is gone) may be taken over by another node.

CREATE TABLE nodes (
    id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

ALTER TABLE conversations ADD COLUMN node VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;

CREATE INDEX conversations_node ON conversations (node);
