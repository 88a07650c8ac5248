-- hexcron schema version 2: who may admit triggers (owners), which daemon leads (lease),
-- and which owner claimed each slot. Times are unix milliseconds, UTC.

-- One row per live process that may admit RunProject attempts: the daemon, a
-- `hexcron trigger`. Renewed every TTL/3 while the process lives, deleted on a clean
-- exit; rows expired for more than a day are deleted whenever an owner registers.
CREATE TABLE owners (
	id         TEXT PRIMARY KEY,          -- random, 16 hex characters
	role       TEXT NOT NULL,             -- daemon | trigger
	host       TEXT NOT NULL DEFAULT '',
	pid        INTEGER NOT NULL DEFAULT 0,
	started_ms INTEGER NOT NULL,
	renewed_ms INTEGER NOT NULL,
	expires_ms INTEGER NOT NULL
);
CREATE INDEX owners_expires ON owners (expires_ms);

-- The daemon that triggers schedules holds the lease. Taking it increments epoch; every
-- admission of the leader checks owner and epoch in the same transaction.
CREATE TABLE lease (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	epoch      INTEGER NOT NULL,
	owner      TEXT,                      -- NULL: nobody leads
	since_ms   INTEGER NOT NULL DEFAULT 0,
	expires_ms INTEGER NOT NULL DEFAULT 0
);
INSERT INTO lease (id, epoch) VALUES (1, 0);

-- The owner whose admission moved the slot to triggering (NULL before this version).
ALTER TABLE slots ADD COLUMN owner TEXT;
