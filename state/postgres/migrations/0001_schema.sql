-- hexcron's PostgreSQL schema, version 1: the same logical schema as SQLite version 4
-- (state/migrations 0001-0004). Times are unix milliseconds, UTC; NULL means "not yet".
-- The ledger, owners and lease hold instants of the database server's clock
-- (clock_timestamp()); slots and meta hold the instants the daemon gives.

-- Marks the schema as hexcron's and records its version (one row).
CREATE TABLE hexcron_schema (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	application TEXT NOT NULL CHECK (application = 'hexcron'),
	version     INTEGER NOT NULL
);
INSERT INTO hexcron_schema (id, application, version) VALUES (1, 'hexcron', 0);

-- One row per slot: a (schedule, nominal instant, matrix values) firing, or a manual run.
CREATE TABLE slots (
	key             TEXT PRIMARY KEY,
	schedule        TEXT NOT NULL,
	nominal_ms      BIGINT NOT NULL,
	matrix          TEXT NOT NULL DEFAULT '',
	kind            TEXT NOT NULL CHECK (kind IN ('scheduled', 'catchup', 'manual')),
	planned_ms      BIGINT NOT NULL,
	state           TEXT NOT NULL CHECK (state IN ('planned', 'triggering', 'triggered', 'running',
	                    'completed', 'errored', 'killed', 'timed_out', 'unable_to_allocate', 'unknown',
	                    'skipped', 'failed')),
	reason          TEXT NOT NULL DEFAULT '',
	run_id          TEXT,
	run_url         TEXT NOT NULL DEFAULT '',
	trace_id        TEXT NOT NULL DEFAULT '',
	attempts        INTEGER NOT NULL DEFAULT 0,
	last_attempt_ms BIGINT,
	last_error      TEXT NOT NULL DEFAULT '',
	triggered_ms    BIGINT,
	started_ms      BIGINT,
	ended_ms        BIGINT,
	elapsed_ms      BIGINT,
	created_ms      BIGINT NOT NULL,
	updated_ms      BIGINT NOT NULL,
	owner           TEXT,                          -- the owner whose admission claimed it
	project         TEXT NOT NULL DEFAULT '',      -- the Hex project the run was triggered in
	timeout_ms      BIGINT,                        -- the schedule's timeout when triggered
	project_version TEXT NOT NULL DEFAULT ''       -- Hex's projectVersion of the run
);
CREATE UNIQUE INDEX slots_instant ON slots (schedule, nominal_ms, matrix) WHERE kind <> 'manual';
CREATE UNIQUE INDEX slots_run ON slots (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX slots_state ON slots (state, planned_ms);
CREATE INDEX slots_schedule ON slots (schedule, nominal_ms);

-- One row per RunProject attempt that may have reached Hex, whatever its outcome
-- (server clock).
CREATE TABLE ledger (
	id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	slot    TEXT REFERENCES slots (key) ON DELETE SET NULL,
	sent_ms BIGINT NOT NULL,
	done_ms BIGINT
);
CREATE INDEX ledger_sent ON ledger (sent_ms);

-- Small key/value facts ('heartbeat').
CREATE TABLE meta (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

-- Processes that may admit triggers (server clock).
CREATE TABLE owners (
	id         TEXT PRIMARY KEY,
	role       TEXT NOT NULL,
	host       TEXT NOT NULL DEFAULT '',
	pid        INTEGER NOT NULL DEFAULT 0,
	started_ms BIGINT NOT NULL,
	renewed_ms BIGINT NOT NULL,
	expires_ms BIGINT NOT NULL
);
CREATE INDEX owners_expires ON owners (expires_ms);

-- The daemon that triggers schedules (server clock). Taking it increments epoch.
CREATE TABLE lease (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	epoch      BIGINT NOT NULL,
	owner      TEXT,
	since_ms   BIGINT NOT NULL DEFAULT 0,
	expires_ms BIGINT NOT NULL DEFAULT 0
);
INSERT INTO lease (id, epoch) VALUES (1, 0);
