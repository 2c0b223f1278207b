-- Temporary grants (docs/policies.md, "In the server"): an admin lets a person (`agent:<login>`)
-- or a team (`team:<id>`) do some actions on some resources until `expires_at` (Unix ms).
-- Expired grants stay listed (the admin page shows them) and allow nothing; revoking deletes
-- the row. `actions` is a JSON list of action patterns.

CREATE TABLE access_grants (
    id TEXT NOT NULL PRIMARY KEY,
    subject TEXT NOT NULL,
    actions TEXT NOT NULL,
    resource TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    granted_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX access_grants_expires_at ON access_grants (expires_at);
