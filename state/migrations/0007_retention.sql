-- hexcron schema version 7: what pruning and `hexcron history --slot` need.
-- (Versions 5 and 6 are other changes; a database moves through every version in order.)

-- A slot's story, kept on its row so that the journal does not have to hold it:
-- why it was planned where it was (the shift's reason, a queue or max_running hold),
-- why its trigger went out after its planned instant (the budget, a hold), and
-- whether its run was adopted after an ambiguous attempt rather than created.
ALTER TABLE slots ADD COLUMN plan_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE slots ADD COLUMN wait_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE slots ADD COLUMN adopted INTEGER NOT NULL DEFAULT 0;

-- Pruning deletes slots whose ledger rows point at them (ON DELETE SET NULL): the index
-- keeps each delete from reading the whole ledger.
CREATE INDEX ledger_slot ON ledger (slot);
