-- hexcron schema version 8: schedules paused with `hexcron pause`, read by the running
-- daemon every few seconds (no reload). One row per paused schedule: a resume deletes
-- it, and the daemon deletes a row whose until has passed, so the table never holds
-- more than the schedules paused now (plus, briefly, those that just expired).
-- (Version 5 is another change; a database moves through every version in order.)
CREATE TABLE pauses (
	schedule  TEXT PRIMARY KEY,
	since_ms  INTEGER NOT NULL,            -- when the pause was set
	until_ms  INTEGER,                     -- NULL: until `hexcron resume`
	by_user   TEXT NOT NULL DEFAULT '',    -- who paused it ($SUDO_USER, else $USER)
	reason    TEXT NOT NULL DEFAULT '',
	CHECK (until_ms IS NULL OR until_ms > since_ms)
);
