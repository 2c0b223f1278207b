-- Temporary grants (docs/policies.md, "In the server"): an admin lets a person (`agent:<login>`)
-- or a team (`team:<id>`) do some actions on some resources until `expires_at` (Unix ms).
-- Expired grants stay listed (the admin page shows them) and allow nothing; revoking deletes
-- the row. `actions` is a JSON list of action patterns. Identifiers use the binary collation,
-- as in 0001.

CREATE TABLE access_grants (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    subject VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    actions TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    resource TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    expires_at BIGINT NOT NULL,
    granted_by VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    reason TEXT CHARACTER SET utf8mb4 NOT NULL,
    created_at BIGINT NOT NULL,
    INDEX access_grants_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
