-- The queue (`status = 'waiting'`), the open-assignment counts (`assignee`) and the sweep for
-- orphaned conversations read conversations by status and assignee. Without these indexes each
-- read scanned the whole table: about 100 sequential scans a second at 100 handoffs a second
-- with 20,000 conversations (docs/benchmarks.md, "Two nodes").
CREATE INDEX conversations_status ON conversations (status);

-- (MySQL indexes the foreign key column by itself.)
CREATE INDEX conversations_assignee ON conversations (assignee);
