-- Who has served which conversation (docs/policies.md, "Who asks"): one row per agent a
-- conversation was ever assigned to, written with the assignment, so `agent.service_history`
-- keeps a customer after the conversation is transferred to someone else. Filled from the
-- current assignees of conversations that exist already.

CREATE TABLE conversation_agents (
    user_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);

INSERT INTO conversation_agents (user_id, conversation_id, at)
SELECT assignee, id, COALESCE(handed_off_at, created_at) FROM conversations WHERE assignee IS NOT NULL;
