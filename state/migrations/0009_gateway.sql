-- hexcron schema version 9: the trigger gateway. A slot a gateway request made carries
-- the client's name, the request's Idempotency-Key (when it had one) and the last
-- instant it may be triggered. An Idempotency-Key is remembered per client until it
-- expires (gateway.idempotency_ttl, default 24h) or its slot is pruned: a retry with the
-- same key and body gets the same slot, and so the same run. The key's row is written
-- in the transaction that records the slot, so two requests with one key make one slot.
-- (Versions 2 to 4 are other changes; a database moves through every version in order.)
ALTER TABLE slots ADD COLUMN client TEXT;          -- gateway client name; NULL for other slots
ALTER TABLE slots ADD COLUMN idem_key TEXT;        -- the request's Idempotency-Key; NULL without one
ALTER TABLE slots ADD COLUMN deadline_ms INTEGER;  -- gateway slots: the last instant the trigger may be sent
CREATE INDEX slots_client ON slots (client, nominal_ms) WHERE client IS NOT NULL;

CREATE TABLE idempotency (
	client      TEXT NOT NULL,
	key         TEXT NOT NULL,
	body_sha256 TEXT NOT NULL,                    -- hex SHA-256 of the request (path and body)
	slot        TEXT NOT NULL REFERENCES slots (key) ON DELETE CASCADE,
	body        TEXT NOT NULL,                    -- the RunProject body to send, JSON: a queued request survives a restart
	created_ms  INTEGER NOT NULL,
	expires_ms  INTEGER NOT NULL,
	PRIMARY KEY (client, key)
);
CREATE INDEX idempotency_expires ON idempotency (expires_ms);
