-- hexcron schema version 3: a slot carries what tracking its run needs, so that a run
-- is polled to its end (and cancelled at its timeout) even after a reload removed its
-- schedule. Filled when the slot is planned, claimed and triggered; rows written before
-- this version have '' and NULL, and the daemon falls back to the config for them.
-- (Version 2 is another change; a database at version 1 applies both in order.)
ALTER TABLE slots ADD COLUMN project TEXT NOT NULL DEFAULT '';  -- the Hex project id the run was triggered in
ALTER TABLE slots ADD COLUMN timeout_ms INTEGER;                -- the schedule's timeout in force when triggered
