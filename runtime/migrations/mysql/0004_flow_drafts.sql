-- The flow designer's drafts and the history of published versions: one draft per flow,
-- saved with a compare-and-set on `revision` (a stale save is refused, never silently
-- overwrites), and who published each version, when, and why. Identifiers use the binary
-- collation, as in 0001.

CREATE TABLE flow_drafts (
    flow_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    revision BIGINT NOT NULL,
    document LONGTEXT CHARACTER SET utf8mb4 NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

ALTER TABLE flow_versions
    ADD COLUMN note LONGTEXT CHARACTER SET utf8mb4 NULL,
    ADD COLUMN published_at BIGINT NULL,
    ADD COLUMN published_by VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
