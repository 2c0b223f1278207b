-- Who has served which conversation (docs/policies.md, "Who asks"): one row per agent a
-- conversation was ever assigned to, written with the assignment, so `agent.service_history`
-- keeps a customer after the conversation is transferred to someone else. Filled from the
-- current assignees of conversations that exist already. Identifiers use the binary
-- collation, as in 0001.

CREATE TABLE conversation_agents (
    user_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    conversation_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

INSERT INTO conversation_agents (user_id, conversation_id, at)
SELECT assignee, id, COALESCE(handed_off_at, created_at) FROM conversations WHERE assignee IS NOT NULL;
