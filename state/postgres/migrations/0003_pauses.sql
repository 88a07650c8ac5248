-- hexcron's PostgreSQL schema, version 3: SQLite version 8 (schedules paused with
-- `hexcron pause`, read by the running daemon every few seconds). One row per paused
-- schedule: a resume deletes it, and the daemon deletes a row whose until has passed,
-- so the table never holds more than the schedules paused now (plus, briefly, those
-- that just expired). Like the ledger, owners and lease, since_ms and until_ms are
-- instants of the server's clock, so that a pause set on one machine ends at the same
-- instant for a daemon on another whose clock is off.
CREATE TABLE pauses (
	schedule  TEXT PRIMARY KEY,
	since_ms  BIGINT NOT NULL,             -- when the pause was set
	until_ms  BIGINT,                      -- NULL: until `hexcron resume`
	by_user   TEXT NOT NULL DEFAULT '',    -- who paused it ($SUDO_USER, else $USER)
	reason    TEXT NOT NULL DEFAULT '',
	CHECK (until_ms IS NULL OR until_ms > since_ms)
);
