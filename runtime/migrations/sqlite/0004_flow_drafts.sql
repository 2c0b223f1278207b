-- The flow designer's drafts and the history of published versions: one draft per flow,
-- saved with a compare-and-set on `revision` (a stale save is refused, never silently
-- overwrites), and who published each version, when, and why.

CREATE TABLE flow_drafts (
    flow_id TEXT NOT NULL PRIMARY KEY,
    revision INTEGER NOT NULL,
    document TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT
);

ALTER TABLE flow_versions ADD COLUMN note TEXT;
ALTER TABLE flow_versions ADD COLUMN published_at INTEGER;
ALTER TABLE flow_versions ADD COLUMN published_by TEXT;
