-- hexcron's PostgreSQL schema, version 4: SQLite version 9 (the trigger gateway). A
-- slot a gateway request made carries the client's name, the request's
-- Idempotency-Key (when it had one) and the last instant it may be triggered. An
-- Idempotency-Key is remembered per client until it expires (gateway.idempotency_ttl)
-- or its slot is pruned. The key's row is written in the transaction that records the
-- slot, which holds the client's advisory lock, so two requests with one key make one
-- slot and no two requests pass one quota place, from any number of processes.
-- created_ms and expires_ms are instants of the server's clock, like the ledger's.
ALTER TABLE slots ADD COLUMN client TEXT;           -- gateway client name; NULL for other slots
ALTER TABLE slots ADD COLUMN idem_key TEXT;         -- the request's Idempotency-Key; NULL without one
ALTER TABLE slots ADD COLUMN deadline_ms BIGINT;    -- gateway slots: the last instant the trigger may be sent
CREATE INDEX slots_client ON slots (client, nominal_ms) WHERE client IS NOT NULL;

CREATE TABLE idempotency (
	client      TEXT NOT NULL,
	key         TEXT NOT NULL,
	body_sha256 TEXT NOT NULL,                    -- hex SHA-256 of the request (path and body)
	slot        TEXT NOT NULL REFERENCES slots (key) ON DELETE CASCADE,
	body        TEXT NOT NULL,                    -- the RunProject body to send, JSON: a queued request survives a restart
	created_ms  BIGINT NOT NULL,
	expires_ms  BIGINT NOT NULL,
	PRIMARY KEY (client, key)
);
CREATE INDEX idempotency_expires ON idempotency (expires_ms);
CREATE INDEX idempotency_slot ON idempotency (slot);  -- the cascade from slots: PostgreSQL does not index a foreign key by itself
