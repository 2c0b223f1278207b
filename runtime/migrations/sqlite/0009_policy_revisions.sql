-- Policies edited in the console's Access page (docs/policies.md, "In the server"): every save
-- is a new revision, kept, so what was in force when is never lost. The newest revision is in
-- force on every node; with no revision the policy file (or the bundled one) is.

CREATE TABLE policy_revisions (
    revision INTEGER NOT NULL PRIMARY KEY,
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
