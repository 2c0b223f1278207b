-- How often each node and each edge of a published flow version was taken, counted from the
-- engine's trace effects (only the conversation's own flow; sub-flow traces are not counted).
-- A node's row has empty `port` and `target`; an edge's row is `node` (its start) `port` →
-- `target`. `stat_key` is the SHA-256 (hex) of `node`, `port` and `target` joined by NUL
-- characters: node ids have no length limit, and a key over the three columns could pass
-- InnoDB's 3,072-byte limit. Increments are upserts (`visits + n`). Identifiers use the
-- binary collation, as in 0001.

CREATE TABLE flow_stats (
    flow_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    version BIGINT NOT NULL,
    stat_key CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    node TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    port TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    target TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    visits BIGINT NOT NULL,
    PRIMARY KEY (flow_id, version, stat_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
