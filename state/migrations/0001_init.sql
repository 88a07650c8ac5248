-- hexcron schema version 1. Times are unix milliseconds, UTC; NULL means "not yet".

-- One row per slot: a (schedule, nominal instant, matrix values) firing, or a manual run.
CREATE TABLE slots (
	key             TEXT PRIMARY KEY,             -- planner's slot key
	schedule        TEXT NOT NULL,
	nominal_ms      INTEGER NOT NULL,             -- the cron instant (now, for manual)
	matrix          TEXT NOT NULL DEFAULT '',     -- canonical JSON object of matrix values, '' if none
	kind            TEXT NOT NULL CHECK (kind IN ('scheduled', 'catchup', 'manual')),
	planned_ms      INTEGER NOT NULL,             -- when the plan said to fire
	state           TEXT NOT NULL CHECK (state IN ('planned', 'triggering', 'triggered', 'running',
	                    'completed', 'errored', 'killed', 'timed_out', 'unable_to_allocate', 'unknown',
	                    'skipped', 'failed')),
	reason          TEXT NOT NULL DEFAULT '',     -- why it is in its state (skipped, failed, unknown, ...)
	run_id          TEXT,                         -- Hex run id once known
	run_url         TEXT NOT NULL DEFAULT '',
	trace_id        TEXT NOT NULL DEFAULT '',
	attempts        INTEGER NOT NULL DEFAULT 0,   -- RunProject attempts admitted for this slot
	last_attempt_ms INTEGER,
	last_error      TEXT NOT NULL DEFAULT '',
	triggered_ms    INTEGER,                      -- when Hex accepted the trigger (201 or adoption)
	started_ms      INTEGER,
	ended_ms        INTEGER,
	elapsed_ms      INTEGER,
	created_ms      INTEGER NOT NULL,
	updated_ms      INTEGER NOT NULL
);
-- A slot is unique on (schedule, nominal, matrix); manual runs are not slots of the cron.
CREATE UNIQUE INDEX slots_instant ON slots (schedule, nominal_ms, matrix) WHERE kind <> 'manual';
-- A Hex run belongs to at most one slot.
CREATE UNIQUE INDEX slots_run ON slots (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX slots_state ON slots (state, planned_ms);
CREATE INDEX slots_schedule ON slots (schedule, nominal_ms);

-- One row per RunProject attempt that may have reached Hex, whatever its outcome.
CREATE TABLE ledger (
	id      INTEGER PRIMARY KEY,
	slot    TEXT REFERENCES slots (key) ON DELETE SET NULL,  -- NULL: not tied to a slot
	sent_ms INTEGER NOT NULL,
	done_ms INTEGER                                           -- NULL while in flight (or lost in a crash)
);
CREATE INDEX ledger_sent ON ledger (sent_ms);

-- Small key/value facts (e.g. 'heartbeat' = last instant the daemon was seen alive, ms).
CREATE TABLE meta (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
