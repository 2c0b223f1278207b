-- Policies edited in the console's Access page (docs/policies.md, "In the server"): every save
-- is a new revision, kept, so what was in force when is never lost. The newest revision is in
-- force on every node; with no revision the policy file (or the bundled one) is.

CREATE TABLE policy_revisions (
    revision BIGINT NOT NULL PRIMARY KEY,
    text MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    author VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
