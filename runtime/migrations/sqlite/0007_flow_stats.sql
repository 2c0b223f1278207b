-- How often each node and each edge of a published flow version was taken, counted from the
-- engine's trace effects (only the conversation's own flow; sub-flow traces are not counted).
-- A node's row has empty `port` and `target`; an edge's row is `node` (its start) `port` →
-- `target`. `stat_key` is the SHA-256 (hex) of `node`, `port` and `target` joined by NUL
-- characters: the key stays short whatever the node ids are (MySQL limits key length), and
-- is computed the same way for every database. Increments are upserts (`visits + n`).

CREATE TABLE flow_stats (
    flow_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    stat_key TEXT NOT NULL,
    node TEXT NOT NULL,
    port TEXT NOT NULL,
    target TEXT NOT NULL,
    visits INTEGER NOT NULL,
    PRIMARY KEY (flow_id, version, stat_key)
);
