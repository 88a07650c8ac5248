-- hexcron schema version 4: the Hex project version each run executed (RunProject's
-- and GetRunStatus' projectVersion, a number or a string as Hex sends it); '' unknown.
-- (Versions 2 and 3 are other changes; a database moves through every version in order.)
ALTER TABLE slots ADD COLUMN project_version TEXT NOT NULL DEFAULT '';
