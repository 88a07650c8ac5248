-- hexcron's PostgreSQL schema, version 2: SQLite version 7 (the slot's story, the
-- ledger's index for pruning). (SQLite's 5 and 6 belong to other changes.)
ALTER TABLE slots ADD COLUMN plan_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE slots ADD COLUMN wait_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE slots ADD COLUMN adopted BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX ledger_slot ON ledger (slot);
